import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { loadDevpoolConfig } from '@hivemind/shared/config/devpool-config';
import { createLogger, PinoNestLogger } from '@hivemind/shared/logging/logger';
import { failBoot, handleSignals } from '@hivemind/shared/nest/bootstrap';
import { errorMessage } from '@hivemind/shared/util/errors';
import { DevpoolModule } from './devpool.module';
import { devpoolTransport } from './grpc/devpool.transport';
import { PoolState } from './pool-state';

/** A local Node Pool for development and tests: a Nest microservice on gRPC. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadDevpoolConfig();
  } catch (err) {
    failBoot(err);
  }
  const logger = createLogger('devpool', { level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  const app = await NestFactory.createMicroservice(DevpoolModule.forRoot(config, logger), {
    strategy: devpoolTransport(config),
    logger: new PinoNestLogger(logger),
  });
  try {
    await app.init();
    await app.listen();
  } catch (err) {
    logger.fatal({ err: errorMessage(err), port: config.DEVPOOL_PORT }, 'devpool cannot listen');
    process.exit(1);
  }
  const users = [...app.get(PoolState).users.keys()];
  logger.info({ port: config.DEVPOOL_PORT, users, tls: Boolean(config.DEVPOOL_TLS_CERT) }, 'devpool listening');
  handleSignals(app, logger);
}

void main();
