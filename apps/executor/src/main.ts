import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { loadWorkerConfig } from '@hivemind/shared/config/worker-config';
import { createLogger, PinoNestLogger } from '@hivemind/shared/logging/logger';
import { failBoot, handleSignals } from '@hivemind/shared/nest/bootstrap';
import { ExecutorModule } from './executor.module';

/** The executor has no HTTP server: an application context runs its queue worker. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadWorkerConfig();
  } catch (err) {
    failBoot(err);
  }
  const logger = createLogger('executor', { level: config.LOG_LEVEL, logDir: config.LOG_DIR });
  const app = await NestFactory.createApplicationContext(ExecutorModule.forRoot(config, logger), {
    logger: new PinoNestLogger(logger),
  });
  handleSignals(app, logger);
  logger.info({ concurrency: config.executorConcurrency, workDir: config.workDir }, 'executor started');
}

void main();
