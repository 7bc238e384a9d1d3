import { ServiceUnavailableException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { WORKER_CONFIG } from '../config/worker-config';
import { HealthController, READINESS_CHECKS, ReadinessCheck, withTimeout } from './health';

async function controllerWith(checks: ReadinessCheck[], timeoutS = 0.2): Promise<HealthController> {
  const mod = await Test.createTestingModule({
    imports: [TerminusModule.forRoot({ logger: false })],
    controllers: [HealthController],
    providers: [
      { provide: READINESS_CHECKS, useValue: checks },
      { provide: WORKER_CONFIG, useValue: { HEALTH_TIMEOUT: timeoutS } },
    ],
  }).compile();
  return mod.get(HealthController);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function failure(p: Promise<unknown>): Promise<Record<string, any>> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ServiceUnavailableException);
    return (err as ServiceUnavailableException).getResponse() as Record<string, never>;
  }
  throw new Error('expected a 503');
}

describe('readiness', () => {
  it('is ok when every check passes, with their details', async () => {
    const c = await controllerWith([{ name: 'a', check: async () => ({ ok: true, details: { n: 1 } }) }]);
    expect(await c.ready()).toMatchObject({ status: 'ok', details: { a: { status: 'up', n: 1 } } });
  });

  it('is 503 naming the failing check and why, including one that hangs past the timeout or throws', async () => {
    const c = await controllerWith([
      { name: 'fine', check: async () => ({ ok: true }) },
      { name: 'low', check: async () => ({ ok: false, reason: 'only 3 MB free' }) },
      { name: 'hang', check: () => new Promise(() => undefined) },
      { name: 'boom', check: async () => Promise.reject(new Error('socket closed')) },
    ]);
    const body = await failure(c.ready());
    expect(body.status).toBe('error');
    expect(body.info).toEqual({ fine: { status: 'up' } });
    expect(body.error).toEqual({
      low: { status: 'down', reason: 'only 3 MB free' },
      hang: { status: 'down', reason: 'hang gave no answer within 0.2 s' },
      boom: { status: 'down', reason: 'socket closed' },
    });
  });

  it('live answers without running the readiness checks', async () => {
    const c = await controllerWith([{ name: 'hang', check: () => new Promise(() => undefined) }]);
    expect(await c.live()).toMatchObject({ status: 'ok', info: { process: { status: 'up', pid: process.pid } } });
  });

  it('withTimeout passes a prompt answer through', async () => {
    await expect(withTimeout(Promise.resolve(7), 50, 'x')).resolves.toBe(7);
  });
});
