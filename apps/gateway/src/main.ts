import 'reflect-metadata';
import { bootWorkerService } from '@hivemind/shared/nest/bootstrap';
import { GatewayModule } from './gateway.module';

void bootWorkerService('gateway', (config, logger) => GatewayModule.forRoot(config, logger), {
  needsCredentials: true,
  started: (c) => ({ nodeId: c.NODE_ID, pool: c.NODE_POOL_ADDRESS, port: c.GRPC_PORT }),
});
