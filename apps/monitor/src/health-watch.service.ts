import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { NodeEvent } from '@hivemind/shared/events/node-events';
import { NodeEvents } from '@hivemind/shared/events/node-events.emitter';
import { READINESS_CHECKS, ReadinessCheck, withTimeout } from '@hivemind/shared/http/health';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { errorMessage } from '@hivemind/shared/util/errors';
import { Ticker } from '@hivemind/shared/util/ticker';

/** One check's state as the health event carries it. */
export interface CheckState {
  name: string;
  ok: boolean;
  reason?: string;
}

/**
 * How often the checks run after the first time. The monitor's health changes rarely
 * (Redis gone, a disk or memory floor crossed); running its checks with every sample
 * cost the idle node a tenth of its CPU.
 */
const WATCH_MS = 30_000;

/**
 * Runs the monitor's readiness checks (the ones /health/ready answers with) once its
 * first sample is due, then every 30 s, and emits a health event when one of them went
 * up or down: the first result after start, then each change.
 */
@Injectable()
export class HealthWatchService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly ticker: Ticker;
  private first: NodeJS.Timeout | null = null;
  private last: string | null = null;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(READINESS_CHECKS) private readonly checks: ReadinessCheck[],
    private readonly events: NodeEvents,
  ) {
    this.ticker = new Ticker('health-watch', WATCH_MS, async () => void (await this.tick()), (_n, err) =>
      this.logger.warn({ err: errorMessage(err) }, 'health watch failed'),
    );
  }

  onApplicationBootstrap(): void {
    this.ticker.start(false);
    // The first result once the sampler has published (it samples at once, then every MONITOR_INTERVAL).
    this.first = setTimeout(() => this.ticker.kick(), this.config.MONITOR_INTERVAL * 1000);
  }

  onApplicationShutdown(): void {
    if (this.first) clearTimeout(this.first);
    this.ticker.stop();
  }

  /** Runs the checks; emits and returns their states when they changed, else null. */
  async tick(): Promise<CheckState[] | null> {
    const ms = this.config.HEALTH_TIMEOUT * 1000;
    const states = await Promise.all(
      this.checks.map(async (c): Promise<CheckState> => {
        try {
          const r = await withTimeout(c.check(), ms, c.name);
          return r.ok ? { name: c.name, ok: true } : { name: c.name, ok: false, reason: r.reason ?? 'down' };
        } catch (err) {
          return { name: c.name, ok: false, reason: errorMessage(err) };
        }
      }),
    );
    // A failing check's reason carries figures that move; only up and down count as a change.
    const key = JSON.stringify(states.map((s) => [s.name, s.ok]));
    if (key === this.last) return null;
    this.last = key;
    this.events.emit(NodeEvent.HealthChanged, { service: 'monitor', at: Date.now(), ready: states.every((s) => s.ok), checks: states });
    return states;
  }
}
