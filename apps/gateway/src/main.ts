import 'reflect-metadata';
import { bootWorkerService } from '@hivemind/shared/nest/bootstrap';
import { GatewayModule } from './gateway.module';

void bootWorkerService('gateway', (config, logger, credentials) => GatewayModule.forRoot(config, logger, credentials!), {
  needsCredentials: true,
  started: (c) => ({ nodeId: c.NODE_ID, pool: c.NODE_POOL_ADDRESS, port: c.GRPC_PORT }),
});
