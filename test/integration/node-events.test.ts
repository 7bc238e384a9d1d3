import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Global, INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxy, ClientProxyFactory, MicroserviceOptions } from '@nestjs/microservices';
import IORedis from 'ioredis';
import { lastValueFrom } from 'rxjs';
import pino from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { eventsClientOptions, eventsServerOptions } from '@hivemind/shared/events/event-transport';
import { NodeEvent } from '@hivemind/shared/events/node-events';
import { LOGGER } from '@hivemind/shared/logging/logger';
import type { HostSample } from '@hivemind/shared/state/monitor-samples';
import { HealthIndicatorService, MicroserviceHealthIndicator } from '@nestjs/terminus';
import { eventTransportCheck } from '../../apps/gateway/src/events/events-health';
import { GatewayEventsModule } from '../../apps/gateway/src/events/events.module';
import { freePort, redisUrl, uniquePrefix, waitFor } from '../support/stack';
import { followStream } from '../support/sse';

const sample = (at: number, cpuPercent: number): HostSample => ({
  at,
  cpuPercent,
  memoryPercent: 40,
  memoryUsedBytes: 4e9,
  memoryTotalBytes: 1e10,
  diskPercent: 55,
  diskFreeBytes: 4.5e10,
  diskTotalBytes: 1e11,
  netRxBytesPerSec: 10,
  netTxBytesPerSec: 20,
  gpus: [],
});

/** SSE events of a stream body, as { event, data } in the order they came (keep-alives left out). */
function sseEvents(text: string): { event: string; data: unknown }[] {
  return text
    .split('\n\n')
    .map((block) => Object.fromEntries(block.split('\n').filter((l) => /^(event|data): /.test(l)).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)])))
    .filter((f) => f.event && f.event !== 'keep-alive')
    .map((f) => ({ event: f.event as string, data: JSON.parse(f.data as string) as unknown }));
}

/** The gateway's event handlers and SSE stream on the Redis transport at REDIS_URL, as main.ts serves them. */
async function gatewayEvents(config: WorkerConfig): Promise<{ app: INestApplication; base: string }> {
  @Global()
  @Module({ providers: [{ provide: WORKER_CONFIG, useValue: config }, { provide: LOGGER, useValue: pino({ level: 'silent' }) }], exports: [WORKER_CONFIG, LOGGER] })
  class CoreForTest {}
  @Module({ imports: [CoreForTest, GatewayEventsModule] })
  class GatewayEventsForTest {}

  const app = await NestFactory.create(GatewayEventsForTest, { logger: false, forceCloseConnections: true });
  app.connectMicroservice<MicroserviceOptions>(eventsServerOptions(config, 'gateway'));
  await app.init();
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  return { app, base: await app.getUrl() };
}

/** Follows GET /api/events; `text()` is what came so far. */
const follow = (base: string) => followStream(`${base}/api/events`);

/**
 * The gateway's side of the live stream against real Redis: its event handlers served
 * on the Nest Redis transport (as main.ts serves them), a Nest ClientProxy emitting as
 * the monitor and executors do, and GET /api/events read as a dashboard reads it.
 */
describe('node events: Redis transport to the SSE stream', () => {
  const prefix = uniquePrefix('events');
  const config = { REDIS_URL: redisUrl(), REDIS_PREFIX: prefix } as WorkerConfig;
  let app: INestApplication;
  let client: ClientProxy;
  let raw: IORedis;
  let base: string;

  beforeAll(async () => {
    ({ app, base } = await gatewayEvents(config));
    client = ClientProxyFactory.create(eventsClientOptions(config, 'test'));
    await client.connect();
    raw = new IORedis(redisUrl());
  });

  afterAll(async () => {
    await client?.close();
    await raw?.quit();
    await app?.close();
  });

  it('streams a good event and drops malformed ones and those of another node', async () => {
    const stream = await follow(base);
    expect(stream.status).toBe(200);
    expect(stream.type).toContain('text/event-stream');

    const emit = (event: string, data: unknown) => lastValueFrom(client.emit(event, data), { defaultValue: undefined });
    // Not JSON at all, straight onto the channel.
    await raw.publish(NodeEvent.HostSample, 'not json {');
    // A sample with a CPU figure that is not a number, one without its node, a task start with a bad id.
    await emit(NodeEvent.HostSample, { node: prefix, sample: { ...sample(1000, 1), cpuPercent: 'high' } });
    await emit(NodeEvent.HostSample, { sample: sample(1001, 2) });
    await emit(NodeEvent.TaskStarted, { node: prefix, taskId: '../etc', executorId: 'e1', startedAt: 5 });
    // Another node on the same Redis.
    await emit(NodeEvent.HostSample, { node: `${prefix}-other`, sample: sample(1002, 3) });
    // Good ones, sent after the rest on the same connection: Redis delivers in order.
    await emit(NodeEvent.HostSample, { node: prefix, sample: sample(2000, 12.5) });
    await emit(NodeEvent.TaskFinished, { node: prefix, taskId: 'task-1', status: 'Success', code: 'succeeded', reason: 'exited with code 0', exitCode: 0, startedAt: 1, finishedAt: 2 });

    const events = await waitFor('the good events on the stream', async () => (sseEvents(stream.text()).length >= 2 ? sseEvents(stream.text()) : null), 10_000);
    await stream.close();
    expect(events).toEqual([
      { event: NodeEvent.HostSample, data: { node: prefix, sample: sample(2000, 12.5) } },
      { event: NodeEvent.TaskFinished, data: { node: prefix, taskId: 'task-1', status: 'Success', code: 'succeeded', reason: 'exited with code 0', exitCode: 0, startedAt: 1, finishedAt: 2 } },
    ]);
  });

  it("starts each new stream with the monitor's last health change", async () => {
    const health = (ready: boolean, at: number) => ({ node: prefix, service: 'monitor', at, ready, checks: [{ name: 'disk', ok: ready, ...(ready ? {} : { reason: 'low' }) }] });
    const first = await follow(base);
    await lastValueFrom(client.emit(NodeEvent.HealthChanged, health(false, 10)), { defaultValue: undefined });
    await lastValueFrom(client.emit(NodeEvent.HealthChanged, health(true, 20)), { defaultValue: undefined });
    await waitFor('both health changes', async () => sseEvents(first.text()).filter((e) => e.event === NodeEvent.HealthChanged).length === 2, 10_000);
    await first.close();
    const later = await follow(base);
    const got = await waitFor('the last health change', async () => sseEvents(later.text())[0], 10_000);
    await later.close();
    expect(got).toEqual({ event: NodeEvent.HealthChanged, data: health(true, 20) });
  });
});

/** Redis going away and coming back under a running gateway and an emitter: nothing throws, and events flow again. */
describe('node events across a Redis restart', () => {
  let redis: ChildProcess | null = null;
  let port: number;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-events-redis-'));
  const startRedis = async () => {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    const probe = new IORedis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => 100 });
    await waitFor('redis-server up', async () => (await probe.ping().catch(() => null)) === 'PONG', 10_000, 100);
    probe.disconnect();
  };

  afterAll(() => void redis?.kill('SIGKILL'));

  it('drops what cannot be sent while Redis is away, and streams again once it is back', async () => {
    port = await freePort();
    await startRedis();
    const config = { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_PREFIX: 'restart' } as WorkerConfig;
    const { app, base } = await gatewayEvents(config);
    const client = ClientProxyFactory.create(eventsClientOptions(config, 'test'));
    const emit = (at: number) => lastValueFrom(client.emit(NodeEvent.HostSample, { node: 'restart', sample: sample(at, 1) }), { defaultValue: undefined });
    try {
      const stream = await follow(base);
      await emit(1);
      await waitFor('the first sample', async () => sseEvents(stream.text()).length === 1, 10_000);

      const exited = new Promise((r) => redis!.once('exit', r));
      redis!.kill('SIGKILL');
      await exited;
      await expect(emit(2)).rejects.toBeDefined();
      await startRedis();
      // The emitter and the gateway reconnect on their own; a sample sent once both are back arrives.
      await waitFor('a sample after the restart', async () => {
        await emit(3).catch(() => undefined);
        return sseEvents(stream.text()).some((e) => (e.data as { sample: HostSample }).sample.at === 3);
      }, 20_000, 500);
      expect(sseEvents(stream.text()).map((e) => (e.data as { sample: HostSample }).sample.at)).not.toContain(2);
      await stream.close();
    } finally {
      await client.close();
      await app.close();
    }
  });
});

describe('the events readiness check', () => {
  const ping = new MicroserviceHealthIndicator(new HealthIndicatorService());

  it('is up while the transport answers, and down naming it when nothing listens at REDIS_URL', async () => {
    expect(await eventTransportCheck({ REDIS_URL: redisUrl() }, ping).check()).toEqual({ ok: true, details: { transport: 'redis' } });
    const down = await eventTransportCheck({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, ping).check();
    expect(down).toMatchObject({ ok: false, details: { transport: 'redis' } });
    expect(down.reason).toMatch(/^the event transport \(Redis pub\/sub at REDIS_URL\) does not answer: ./);
  });
});
