import { Transport } from '@nestjs/microservices';
import { eventsClientOptions, eventsPingOptions, eventsServerOptions } from './event-transport';
import { NodeEvent, parseNodeEvent } from './node-events';

const sample = { at: 1, cpuPercent: 2, memoryPercent: 3, memoryUsedBytes: 4, memoryTotalBytes: 5, diskPercent: 6, diskFreeBytes: 7, diskTotalBytes: 8, netRxBytesPerSec: 9, netTxBytesPerSec: 10, gpus: [] };
const ended = { node: 'n', taskId: 't-1', code: 'succeeded', reason: 'exited with code 0', exitCode: 0, startedAt: 1, finishedAt: 2 };

describe('node events', () => {
  it('takes a well-formed payload as it is', () => {
    expect(parseNodeEvent(NodeEvent.HostSample, { node: 'n', sample })).toEqual({ ok: true, data: { node: 'n', sample } });
    expect(parseNodeEvent(NodeEvent.TaskFinished, { ...ended, status: 'Failed' }).ok).toBe(true);
    expect(parseNodeEvent(NodeEvent.TaskStopped, { ...ended, status: 'Stopped' }).ok).toBe(true);
  });

  it('names each field that is wrong', () => {
    expect(parseNodeEvent(NodeEvent.HostSample, { node: 'n', sample: { ...sample, cpuPercent: 'high' } })).toEqual({ ok: false, problem: 'sample.cpuPercent: Expected number, received string' });
    expect(parseNodeEvent(NodeEvent.HostSample, { sample })).toEqual({ ok: false, problem: 'node: Required' });
    expect(parseNodeEvent(NodeEvent.TaskStarted, 'not json {')).toEqual({ ok: false, problem: '(payload): Expected object, received string' });
    const badId = parseNodeEvent(NodeEvent.TaskStarted, { node: 'n', taskId: '../etc', executorId: 'e', startedAt: 1 });
    expect(badId.ok ? '' : badId.problem).toMatch(/^taskId: /);
    // A stop is not a finish, nor the other way round.
    expect(parseNodeEvent(NodeEvent.TaskFinished, { ...ended, status: 'Stopped' }).ok).toBe(false);
    expect(parseNodeEvent(NodeEvent.TaskStopped, { ...ended, status: 'Success' }).ok).toBe(false);
  });
});

describe('event transport options', () => {
  const config = { REDIS_URL: 'rediss://worker:p%40ss@redis.example:6380/2' };

  it('reads REDIS_URL as the queues do: host, port, user, password, database, TLS', () => {
    const server = eventsServerOptions(config, 'gateway');
    expect(server.transport).toBe(Transport.REDIS);
    expect(server.options).toMatchObject({ host: 'redis.example', port: 6380, username: 'worker', password: 'p@ss', db: 2, tls: {}, connectionName: 'hivemind-gateway-events' });
  });

  it('keeps the server and the emitters reconnecting; emitters queue nothing while Redis is away; the ping tries once', () => {
    expect(eventsServerOptions(config, 'gateway').options).toMatchObject({ retryAttempts: Number.MAX_SAFE_INTEGER, retryDelay: 2000 });
    expect(eventsClientOptions(config, 'monitor').options).toMatchObject({ retryAttempts: Number.MAX_SAFE_INTEGER, enableOfflineQueue: false });
    const ping = eventsPingOptions(config, 'gateway');
    expect(ping.options).not.toHaveProperty('retryAttempts');
    expect(ping.options).not.toHaveProperty('retryStrategy');
  });
});
