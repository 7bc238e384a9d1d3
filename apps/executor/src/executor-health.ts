import { Provider } from '@nestjs/common';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { READINESS_CHECKS, ReadinessCheck, redisCheck } from '@hivemind/shared/http/health';
import { StateLink } from '@hivemind/shared/state/state.module';
import { errorMessage } from '@hivemind/shared/util/errors';
import { RuntimeService } from './runtime/runtime.service';

/** The executor is ready when Redis and Docker answer and it has a runtime to run tasks with. */
export function executorReadiness(config: WorkerConfig, redis: StateLink, runtimes: RuntimeService): ReadinessCheck[] {
  return [
    redisCheck(redis),
    {
      name: 'docker',
      check: async () => {
        if (!config.DOCKER_ENABLED) return { ok: runtimes.runtime !== null, details: { docker: 'disabled' }, reason: runtimes.problem ?? 'DOCKER_ENABLED=false' };
        try {
          await runtimes.ping();
          return { ok: true, details: { socket: config.DOCKER_SOCKET } };
        } catch (err) {
          // With the process runtime allowed, a missing Docker is a degraded but working executor.
          const ok = runtimes.runtime !== null && !runtimes.usesDocker;
          return { ok, details: { socket: config.DOCKER_SOCKET }, reason: `Docker does not answer at ${config.DOCKER_SOCKET}: ${errorMessage(err)}` };
        }
      },
    },
    {
      name: 'runtime',
      check: async () =>
        runtimes.runtime ? { ok: true, details: { runtime: runtimes.runtime.name } } : { ok: false, reason: runtimes.problem ?? 'no task runtime resolved yet' },
    },
  ];
}

export const executorReadinessProvider: Provider = {
  provide: READINESS_CHECKS,
  inject: [WORKER_CONFIG, StateLink, RuntimeService],
  useFactory: executorReadiness,
};
