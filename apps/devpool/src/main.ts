import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { loadDevpoolConfig } from '@hivemind/shared/config/devpool-config';
import { createLogger, PinoNestLogger } from '@hivemind/shared/logging/logger';
import { failBoot, handleSignals } from '@hivemind/shared/nest/bootstrap';
import { DevpoolModule } from './devpool.module';

/** A local Node Pool for development and tests. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadDevpoolConfig();
  } catch (err) {
    failBoot(err);
  }
  const logger = createLogger('devpool', { level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  const app = await NestFactory.createApplicationContext(DevpoolModule.forRoot(config, logger), {
    logger: new PinoNestLogger(logger),
  });
  handleSignals(app, logger);
}

void main();
