import type { MicroserviceHealthIndicator } from '@nestjs/terminus';
import type { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { eventsPingOptions } from '@hivemind/shared/events/event-transport';
import type { ReadinessCheck } from '@hivemind/shared/http/health';

/**
 * The event transport answers: Terminus's microservice ping (a Nest client on the
 * Redis transport connects and closes) against the Redis the monitor and executors
 * emit to. Named `events` in /health/ready.
 */
export function eventTransportCheck(config: Pick<WorkerConfig, 'REDIS_URL'>, microservice: MicroserviceHealthIndicator): ReadinessCheck {
  return {
    name: 'events',
    check: async () => {
      const result = (await microservice.pingCheck('events', eventsPingOptions(config, 'gateway'))).events as { status: string; message?: string };
      const details = { transport: 'redis' };
      return result.status === 'up'
        ? { ok: true, details }
        : { ok: false, details, reason: `the event transport (Redis pub/sub at REDIS_URL) does not answer: ${result.message ?? 'down'}` };
    },
  };
}
