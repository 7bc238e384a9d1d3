import type { ClientProxy } from '@nestjs/microservices';
import type { Logger } from 'pino';
import { Observable, of, throwError } from 'rxjs';
import type { WorkerConfig } from '../config/worker-config';
import { NodeEvent } from './node-events';
import { NodeEvents } from './node-events.emitter';

/** A client whose emit() answers as `answer` says, recording what it was given. */
function fakeClient(answer: () => Observable<unknown>) {
  const sent: { pattern: string; data: unknown }[] = [];
  const client = { emit: (pattern: string, data: unknown) => (sent.push({ pattern, data }), answer()) } as unknown as ClientProxy;
  return { client, sent };
}

function fakeLogger() {
  const warned: Record<string, unknown>[] = [];
  return { logger: { warn: (o: Record<string, unknown>) => void warned.push(o) } as unknown as Logger, warned };
}

const config = { REDIS_PREFIX: 'node-a' } as WorkerConfig;
const started = { taskId: 't-1', executorId: 'e1', startedAt: 5 };

describe('NodeEvents', () => {
  afterEach(() => jest.useRealTimers());

  it("sends each event with the node's prefix", () => {
    const { client, sent } = fakeClient(() => of(undefined));
    new NodeEvents(client, config, fakeLogger().logger).emit(NodeEvent.TaskStarted, started);
    expect(sent).toEqual([{ pattern: NodeEvent.TaskStarted, data: { ...started, node: 'node-a' } }]);
  });

  it('never throws when sending fails, and reports failures at most once a minute with their count', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { client } = fakeClient(() => throwError(() => new Error('Connection is closed.')));
    const { logger, warned } = fakeLogger();
    const events = new NodeEvents(client, config, logger);
    for (let i = 0; i < 5; i++) expect(() => events.emit(NodeEvent.TaskStarted, started)).not.toThrow();
    expect(warned).toEqual([expect.objectContaining({ event: NodeEvent.TaskStarted, err: 'Connection is closed.', dropped: 1 })]);
    jest.setSystemTime(1_000_000 + 61_000);
    events.emit(NodeEvent.TaskStarted, started);
    expect(warned).toHaveLength(2);
    expect(warned[1]).toMatchObject({ dropped: 5 });
  });

  it('survives a client that throws instead of failing its observable', () => {
    const client = { emit: () => { throw new Error('not initialized'); } } as unknown as ClientProxy;
    const { logger, warned } = fakeLogger();
    expect(() => new NodeEvents(client, config, logger).emit(NodeEvent.TaskStarted, started)).not.toThrow();
    expect(warned).toHaveLength(1);
  });
});
