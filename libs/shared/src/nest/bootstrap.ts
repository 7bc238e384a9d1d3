import { DynamicModule, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Logger } from 'pino';
import { loadWorkerConfig, WorkerConfig } from '../config/worker-config';
import { resolveCredentials } from '../security/secrets';
import { createLogger, PinoNestLogger } from '../logging/logger';
import { PoolCredentials } from '../proto/pool-client';

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

/**
 * Boots one worker service (gateway, executor or monitor) as an application
 * context: validated config (a bad one exits 2 naming the variable), the pino
 * logger, signal handling.
 */
export async function bootWorkerService(
  service: string,
  makeModule: (config: WorkerConfig, logger: Logger, credentials: PoolCredentials | null) => DynamicModule,
  opts: {
    needsCredentials?: boolean;
    started?: (config: WorkerConfig) => Record<string, unknown>;
    /** Async work before the services are built (e.g. measuring the CPU score); may fill in config. */
    prepare?: (config: WorkerConfig, logger: Logger) => Promise<void>;
  } = {},
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
  const logger = createLogger(service, { level: config.LOG_LEVEL, logDir: config.LOG_DIR });
  await opts.prepare?.(config, logger);
  const app = await NestFactory.createApplicationContext(makeModule(config, logger, credentials), { logger: new PinoNestLogger(logger) });
  handleSignals(app, logger);
  logger.info(opts.started?.(config) ?? {}, `${service} started`);
  return app;
}
