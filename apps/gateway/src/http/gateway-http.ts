import * as path from 'node:path';
import { Provider } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { MicroserviceHealthIndicator } from '@nestjs/terminus';
import { Queue } from 'bullmq';
import cookieParser from 'cookie-parser';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { DASHBOARD_COOKIE, DashboardToken, loadDashboardToken } from '@hivemind/shared/http/dashboard-token';
import { READINESS_CHECKS, ReadinessCheck, redisCheck } from '@hivemind/shared/http/health';
import { StateLink } from '@hivemind/shared/state/state.module';
import { eventTransportCheck } from '../events/events-health';
import { PoolLinkService } from '../pool/pool-link.service';
import { RESULTS_QUEUE, TASKS_QUEUE } from '../queues.provider';
import { DASHBOARD_TOKEN, dashboardAuth, publicDir } from './dashboard-auth';

/**
 * The gateway is ready when Redis answers, the event transport answers, and the pool
 * link is logged in and heartbeating.
 */
export function gatewayReadiness(config: WorkerConfig, redis: StateLink, pool: PoolLinkService, microservice: MicroserviceHealthIndicator): ReadinessCheck[] {
  return [
    redisCheck(redis),
    eventTransportCheck(config, microservice),
    {
      name: 'pool',
      check: async () => {
        const age = pool.lastHeartbeatOk === null ? null : Math.round((Date.now() - pool.lastHeartbeatOk) / 1000);
        const details = { address: config.NODE_POOL_ADDRESS, loggedIn: pool.client.loggedIn, lastHeartbeatAgeSeconds: age };
        if (!pool.client.loggedIn) return { ok: false, details, reason: `not logged in to the Node Pool at ${config.NODE_POOL_ADDRESS}${pool.lastError ? `: ${pool.lastError}` : ''}` };
        if (age === null) return { ok: false, details, reason: 'no heartbeat has reached the Node Pool yet' };
        if (age > config.heartbeatMaxAge) {
          return { ok: false, details, reason: `the last heartbeat the Node Pool took was ${age} s ago (more than ${config.heartbeatMaxAge} s)${pool.lastError ? `: ${pool.lastError}` : ''}` };
        }
        return { ok: true, details };
      },
    },
  ];
}

export const gatewayReadinessProvider: Provider = {
  provide: READINESS_CHECKS,
  inject: [WORKER_CONFIG, StateLink, PoolLinkService, MicroserviceHealthIndicator],
  useFactory: gatewayReadiness,
};

/** The dashboard token, made (0600) at first start. */
export const dashboardTokenProvider: Provider = {
  provide: DASHBOARD_TOKEN,
  inject: [WORKER_CONFIG],
  useFactory: async (config: WorkerConfig) => (await loadDashboardToken(config, true)) as DashboardToken,
};

/**
 * What the gateway serves besides its controllers: cookies, the token check in front
 * of everything but /health (and /metrics when it is open, see WorkerConfig.metricsAuth), the static files
 * (the dashboard's and uPlot's from node_modules) and Bull Board at /queues.
 */
export function setupGatewayHttp(app: NestExpressApplication, config: WorkerConfig): void {
  const { token } = app.get<DashboardToken>(DASHBOARD_TOKEN);
  app.use(cookieParser());
  app.use(dashboardAuth(token, { metricsOpen: !config.metricsAuth }));
  app.useStaticAssets(publicDir(), { prefix: '/static/', index: false });
  app.useStaticAssets(path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js')), { prefix: '/static/vendor/uplot/', index: false });

  const board = new ExpressAdapter();
  board.setBasePath('/queues');
  createBullBoard({
    queues: [app.get<Queue>(TASKS_QUEUE), app.get<Queue>(RESULTS_QUEUE)].map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'HiveMind worker queues' } },
  });
  app.use('/queues', board.getRouter());

  // OpenAPI: the UI at /api/docs and the document at /api/openapi.json (served from node_modules).
  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('HiveMind worker')
      .setDescription('The gateway\'s dashboard API. Send the dashboard token as a Bearer header or the login cookie.')
      .addBearerAuth()
      .addCookieAuth(DASHBOARD_COOKIE)
      .build(),
  );
  SwaggerModule.setup('api/docs', app, doc, { jsonDocumentUrl: 'api/openapi.json', yamlDocumentUrl: 'api/openapi.yaml' });
}

/** Prints the dashboard's address, and the token the one time it is made. */
export function announceDashboard(app: NestExpressApplication, config: WorkerConfig, logger: Logger): void {
  const { token, created } = app.get<DashboardToken>(DASHBOARD_TOKEN);
  const url = `http://${config.HTTP_HOST.includes(':') ? `[${config.HTTP_HOST}]` : config.HTTP_HOST}:${config.HTTP_PORT}/`;
  logger.info({ url, tokenFile: config.DASHBOARD_TOKEN ? 'DASHBOARD_TOKEN' : config.dashboardTokenFile }, 'dashboard listening');
  if (created) {
    // Once, to the terminal and outside the JSON log: the log never carries the token.
    process.stderr.write(
      `\nHiveMind dashboard: ${url}\nDashboard token (shown this once; kept in ${config.dashboardTokenFile}, mode 0600):\n  ${token}\n\n`,
    );
  }
}
