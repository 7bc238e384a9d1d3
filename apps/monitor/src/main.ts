import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { loadWorkerConfig } from '@hivemind/shared/config/worker-config';
import { createLogger, PinoNestLogger } from '@hivemind/shared/logging/logger';
import { failBoot, handleSignals } from '@hivemind/shared/nest/bootstrap';
import { MonitorModule } from './monitor.module';

async function main(): Promise<void> {
  let config;
  try {
    config = loadWorkerConfig();
  } catch (err) {
    failBoot(err);
  }
  const logger = createLogger('monitor', { level: config.LOG_LEVEL, logDir: config.LOG_DIR });
  const app = await NestFactory.createApplicationContext(MonitorModule.forRoot(config, logger), {
    logger: new PinoNestLogger(logger),
  });
  handleSignals(app, logger);
  logger.info({ intervalS: config.MONITOR_INTERVAL }, 'monitor started');
}

void main();
