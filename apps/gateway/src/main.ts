import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { loadWorkerConfig, requireCredentials } from '@hivemind/shared/config/worker-config';
import { createLogger, PinoNestLogger } from '@hivemind/shared/logging/logger';
import { failBoot, handleSignals } from '@hivemind/shared/nest/bootstrap';
import { GatewayModule } from './gateway.module';

async function main(): Promise<void> {
  let config;
  try {
    config = loadWorkerConfig();
    requireCredentials(config);
  } catch (err) {
    failBoot(err);
  }
  const logger = createLogger('gateway', { level: config.LOG_LEVEL, logDir: config.LOG_DIR });
  const app = await NestFactory.createApplicationContext(GatewayModule.forRoot(config, logger), {
    logger: new PinoNestLogger(logger),
  });
  handleSignals(app, logger);
  logger.info({ nodeId: config.NODE_ID, pool: config.NODE_POOL_ADDRESS, port: config.GRPC_PORT }, 'gateway started');
}

void main();
