import { BadRequestException } from '@nestjs/common';
import { z } from 'zod';

/** A 400 whose body names the field that was wrong. */
export function badRequest(field: string, message: string): BadRequestException {
  return new BadRequestException({ statusCode: 400, error: 'Bad Request', field, message: `${field}: ${message}` });
}

/** Parses request input with a zod schema; the first problem becomes a 400 naming its field. */
export function parseOr400<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, input: unknown, what: string): T {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : what);
  throw badRequest(field, issue.code === 'unrecognized_keys' ? `unknown field in ${what}` : issue.message);
}

const intIn = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

export const taskIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1 to 64 characters of A-Z, a-z, 0-9, _ or -');

export const historyQuerySchema = (max: number) => z.object({ limit: intIn(1, max).optional() }).strict();
export const monitorQuerySchema = z.object({ minutes: intIn(1, 24 * 60).optional() }).strict();
export const outputQuerySchema = z.object({ task: taskIdSchema.optional() }).strict();
export const loginBodySchema = z.object({ token: z.string().min(1, 'is required').max(512) });
