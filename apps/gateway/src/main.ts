import 'reflect-metadata';
import { bootWorkerService } from '@hivemind/shared/nest/bootstrap';
import { GatewayModule } from './gateway.module';
import { announceDashboard, setupGatewayHttp } from './http/gateway-http';

void bootWorkerService('gateway', (config, logger, credentials) => GatewayModule.forRoot(config, logger, credentials!), {
  needsCredentials: true,
  http: (c) => ({ host: c.HTTP_HOST, port: c.HTTP_PORT }),
  setupHttp: (app, config) => setupGatewayHttp(app, config),
  listening: (app, config, logger) => announceDashboard(app as Parameters<typeof announceDashboard>[0], config, logger),
  started: (c) => ({ nodeId: c.NODE_ID, pool: c.NODE_POOL_ADDRESS, port: c.GRPC_PORT, httpPort: c.HTTP_PORT }),
});
