import { Controller, Get, Inject, Provider, Req, Res, UnauthorizedException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorResult, HealthIndicatorService, TerminusModule } from '@nestjs/terminus';
import type { Request, Response } from 'express';
import type { Registry } from 'prom-client';
import { WORKER_CONFIG, WorkerConfig } from '../config/worker-config';
import { METRICS_REGISTRY } from '../metrics/registry';
import { loadDashboardToken, presentedToken, tokenMatches } from './dashboard-token';
import { errorMessage } from '../util/errors';
import { StateLink } from '../state/state.module';

/** One readiness indicator: a name and a check that says why when it fails. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<ReadinessResult>;
}

export interface ReadinessResult {
  ok: boolean;
  /** Why the check failed (or a short note when it passed). */
  reason?: string;
  details?: Record<string, unknown>;
}

export const READINESS_CHECKS = Symbol('READINESS_CHECKS');

/** Rejects with a message naming the check when it takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} gave no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Redis answers PING. */
export function redisCheck(link: Pick<StateLink, 'ping'>): ReadinessCheck {
  return {
    name: 'redis',
    check: async () => {
      try {
        return { ok: await link.ping() };
      } catch (err) {
        return { ok: false, reason: `Redis does not answer: ${errorMessage(err)}` };
      }
    },
  };
}

/**
 * Terminus endpoints every worker service serves: /health/live (the process answers)
 * and /health/ready (each readiness check, with a timeout; a failing one says why).
 * The answer is 200 when all are up, else 503.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(READINESS_CHECKS) private readonly checks: ReadinessCheck[],
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
  ) {}

  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([async () => this.indicators.check('process').up({ pid: process.pid, uptimeSeconds: Math.round(process.uptime()) })]);
  }

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check(this.checks.map((c) => () => this.run(c)));
  }

  private async run(c: ReadinessCheck): Promise<HealthIndicatorResult> {
    const session = this.indicators.check(c.name);
    const ms = this.config.HEALTH_TIMEOUT * 1000;
    try {
      const r = await withTimeout(c.check(), ms, c.name);
      const data = { ...(r.details ?? {}), ...(r.reason ? { reason: r.reason } : {}) };
      return r.ok ? session.up(data) : session.down(data);
    } catch (err) {
      return session.down({ reason: errorMessage(err) });
    }
  }
}

/**
 * Prometheus metrics of this service. Open while HTTP binds to loopback (the default);
 * bound to another address (or with METRICS_AUTH=true) it wants the dashboard token as a
 * Bearer header or cookie, unless METRICS_AUTH=false.
 */
@Controller()
export class MetricsController {
  private token: string | null = null;

  constructor(
    @Inject(METRICS_REGISTRY) private readonly registry: Registry,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
  ) {}

  @Get('metrics')
  async metrics(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (this.config.metricsAuth) {
      this.token ??= (await loadDashboardToken(this.config, false))?.token ?? null;
      if (!this.token || !tokenMatches(presentedToken(req.headers, req.cookies as Record<string, string> | undefined), this.token)) {
        throw new UnauthorizedException('metrics need the dashboard token: send Authorization: Bearer <token> (METRICS_AUTH)');
      }
    }
    res.setHeader('Content-Type', this.registry.contentType);
    res.send(await this.registry.metrics());
  }
}

/** The module parts a service adds to serve /health and /metrics. */
export function healthHttpParts(checks: Provider) {
  return {
    imports: [TerminusModule.forRoot({ errorLogStyle: 'json', logger: false })],
    controllers: [HealthController, MetricsController],
    providers: [checks],
  };
}
