import { DynamicModule, INestApplication, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { MicroserviceOptions } from '@nestjs/microservices';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger as NestPinoLogger } from 'nestjs-pino';
import type { Logger } from 'pino';
import { loadWorkerConfig, WorkerConfig } from '../config/worker-config';
import { resolveCredentials } from '../security/secrets';
import { createLogger, effectiveLevel } from '../logging/logger';
import { PoolCredentials } from '../proto/pool-client';
import { errorMessage } from '../util/errors';

/**
 * Closes the app on SIGTERM/SIGINT (Nest runs the shutdown hooks: workers close,
 * servers drain) and logs crashes before exiting.
 */
export function handleSignals(app: INestApplicationContext, logger: Logger): void {
  let closing = false;
  const close = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    app
      .close()
      .then(() => process.exit(0))
      .catch((err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => close('SIGTERM'));
  process.on('SIGINT', () => close('SIGINT'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
}

/** Prints a config error (which names the variable) and exits 2. */
export function failBoot(err: unknown): never {
  console.error((err as Error)?.message ?? String(err));
  process.exit(2);
}

export interface WorkerBootOptions {
  needsCredentials?: boolean;
  started?: (config: WorkerConfig) => Record<string, unknown>;
  /** Where the service serves HTTP (health, metrics, ...); null for none. */
  http?: (config: WorkerConfig) => { host: string; port: number } | null;
  /** Mounts what the service serves besides its controllers, before it listens. */
  setupHttp?: (app: NestExpressApplication, config: WorkerConfig, logger: Logger) => Promise<void> | void;
  /** Runs once the service listens (e.g. to print the dashboard's URL). */
  listening?: (app: INestApplication, config: WorkerConfig, logger: Logger) => Promise<void> | void;
  /**
   * The Nest microservice transports the service serves beside HTTP (a hybrid app): they
   * start after the app is initialised (its bootstrap hooks ran) and before HTTP listens,
   * and close before the shutdown hooks run.
   */
  microservices?: (config: WorkerConfig, logger: Logger, app: INestApplication) => MicroserviceOptions[];
  /** Async work before the services are built (e.g. measuring the CPU score); may fill in config. */
  prepare?: (config: WorkerConfig, logger: Logger) => Promise<void>;
}

/**
 * Boots one worker service (gateway, executor or monitor): validated config (a bad
 * one exits 2 naming the variable), the pino logger (through nestjs-pino), signal
 * handling, and an HTTP server when the service has a port; otherwise an
 * application context.
 */
export async function bootWorkerService(
  service: string,
  makeModule: (config: WorkerConfig, logger: Logger, credentials: PoolCredentials | null) => DynamicModule,
  opts: WorkerBootOptions = {},
): Promise<INestApplicationContext> {
  let config: WorkerConfig;
  let credentials: PoolCredentials | null = null;
  try {
    config = loadWorkerConfig();
    if (opts.needsCredentials) {
      const c = resolveCredentials(config);
      credentials = { username: c.nodeId, password: c.password };
    }
  } catch (err) {
    failBoot(err);
  }
  const logger = createLogger(service, {
    level: effectiveLevel(config.LOG_LEVEL),
    format: config.LOG_FORMAT,
    logDir: config.LOG_DIR,
    fileSizeMb: config.LOG_FILE_SIZE_MB,
    fileCount: config.LOG_FILE_COUNT,
  });
  await opts.prepare?.(config, logger);
  const module = makeModule(config, logger, credentials);
  const http = opts.http?.(config) ?? null;
  let app: INestApplicationContext;
  if (http) {
    const web = await NestFactory.create<NestExpressApplication>(module, { bufferLogs: true, forceCloseConnections: true });
    web.useLogger(web.get(NestPinoLogger));
    web.disable('x-powered-by');
    await opts.setupHttp?.(web, config, logger);
    const transports = opts.microservices?.(config, logger, web) ?? [];
    if (transports.length > 0) {
      for (const t of transports) web.connectMicroservice<MicroserviceOptions>(t);
      try {
        await web.init();
        await web.startAllMicroservices();
      } catch (err) {
        logger.fatal({ err: errorMessage(err) }, `${service} cannot start its transports`);
        process.exit(1);
      }
    }
    try {
      await web.listen(http.port, http.host);
    } catch (err) {
      logger.fatal({ err: errorMessage(err), host: http.host, port: http.port }, `${service} cannot listen for HTTP`);
      process.exit(1);
    }
    logger.info({ host: http.host, port: http.port }, `${service} HTTP listening`);
    await opts.listening?.(web, config, logger);
    app = web;
  } else {
    app = await NestFactory.createApplicationContext(module, { bufferLogs: true });
    app.useLogger(app.get(NestPinoLogger));
  }
  handleSignals(app, logger);
  logger.info(opts.started?.(config) ?? {}, `${service} started`);
  return app;
}
