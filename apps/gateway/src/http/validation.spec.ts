import { BadRequestException } from '@nestjs/common';
import { historyQuerySchema, loginBodySchema, monitorQuerySchema, parseOr400, taskIdSchema } from './validation';

function fieldOf(fn: () => unknown): { field: string; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequestException);
    return (err as BadRequestException).getResponse() as { field: string; message: string };
  }
  throw new Error('expected a 400');
}

describe('API input validation', () => {
  it('parses good query strings into numbers', () => {
    expect(parseOr400(historyQuerySchema(100), { limit: '20' }, 'query')).toEqual({ limit: 20 });
    expect(parseOr400(historyQuerySchema(100), {}, 'query')).toEqual({});
    expect(parseOr400(monitorQuerySchema, { minutes: '60' }, 'query')).toEqual({ minutes: 60 });
  });

  it('names the field of a bad value, an unknown field, or a bad task id', () => {
    expect(fieldOf(() => parseOr400(historyQuerySchema(100), { limit: '101' }, 'query'))).toMatchObject({ field: 'limit', message: 'limit: must be at most 100' });
    expect(fieldOf(() => parseOr400(historyQuerySchema(100), { limit: '-1' }, 'query'))).toMatchObject({ field: 'limit', message: 'limit: expected a whole number' });
    expect(fieldOf(() => parseOr400(monitorQuerySchema, { minutes: '5', hours: '1' }, 'query'))).toMatchObject({ field: 'hours', message: 'hours: unknown field in query' });
    expect(fieldOf(() => parseOr400(taskIdSchema, '../etc', 'taskId'))).toMatchObject({ field: 'taskId' });
    expect(fieldOf(() => parseOr400(loginBodySchema, {}, 'login form'))).toMatchObject({ field: 'token' });
  });
});
