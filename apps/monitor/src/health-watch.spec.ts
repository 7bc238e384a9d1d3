import type { Logger } from 'pino';
import type { WorkerConfig } from '@hivemind/shared/config/worker-config';
import type { NodeEvents } from '@hivemind/shared/events/node-events.emitter';
import type { ReadinessCheck, ReadinessResult } from '@hivemind/shared/http/health';
import { HealthWatchService } from './health-watch.service';

describe('HealthWatchService', () => {
  const config = { MONITOR_INTERVAL: 5, HEALTH_TIMEOUT: 1 } as WorkerConfig;
  const logger = { warn: () => undefined } as unknown as Logger;

  function watch(results: Record<string, () => ReadinessResult>) {
    const emitted: unknown[] = [];
    const events = { emit: (_e: string, data: unknown) => void emitted.push(data) } as unknown as NodeEvents;
    const checks: ReadinessCheck[] = Object.entries(results).map(([name, r]) => ({ name, check: async () => r() }));
    return { svc: new HealthWatchService(config, logger, checks, events), emitted };
  }

  it('emits the first result, then only when a check goes up or down', async () => {
    let free = 900;
    const { svc, emitted } = watch({
      redis: () => ({ ok: true }),
      disk: () => (free >= 500 ? { ok: true } : { ok: false, reason: `only ${free} MB free` }),
    });
    await svc.tick();
    expect(emitted).toEqual([expect.objectContaining({ service: 'monitor', ready: true, checks: [{ name: 'redis', ok: true }, { name: 'disk', ok: true }] })]);
    free = 800;
    expect(await svc.tick()).toBeNull();
    free = 100;
    await svc.tick();
    free = 90; // still down, another figure: no change
    await svc.tick();
    expect(emitted).toHaveLength(2);
    expect(emitted[1]).toMatchObject({ ready: false, checks: [{ name: 'redis', ok: true }, { name: 'disk', ok: false, reason: 'only 100 MB free' }] });
  });

  it('counts a check that throws as down, with its error as the reason', async () => {
    const { svc, emitted } = watch({ redis: () => { throw new Error('ECONNREFUSED'); } });
    await svc.tick();
    expect(emitted).toEqual([expect.objectContaining({ ready: false, checks: [{ name: 'redis', ok: false, reason: 'ECONNREFUSED' }] })]);
  });
});
