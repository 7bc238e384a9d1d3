import type { DevpoolConfig } from '@hivemind/shared/config/devpool-config';
import {
  MasterNodeServiceService,
  NodeManagerServiceService,
  UserServiceService,
  WorkerNodeServiceService,
} from '@hivemind/shared/proto/generated/nodepool';
import { GrpcTransport, servicePackage } from '@hivemind/shared/proto/grpc-transport';
import { serverCredentials } from '@hivemind/shared/security/tls';

/**
 * The pool side of the protocol on DEVPOOL_BIND:DEVPOOL_PORT, as a Nest microservice
 * transport: UserService, NodeManagerService, MasterNodeService and the pool's half of
 * WorkerNodeService (the controllers in this folder). Every call but Login and
 * RefreshToken needs `authorization: Bearer <jwt>`, refused as the deployed pool refuses it.
 */
export function devpoolTransport(config: DevpoolConfig): GrpcTransport {
  return new GrpcTransport({
    url: `${config.DEVPOOL_BIND}:${config.DEVPOOL_PORT}`,
    package: 'nodepool',
    packageDefinition: servicePackage({
      'nodepool.UserService': UserServiceService,
      'nodepool.NodeManagerService': NodeManagerServiceService,
      'nodepool.MasterNodeService': MasterNodeServiceService,
      'nodepool.WorkerNodeService': WorkerNodeServiceService,
    }),
    maxMessageBytes: config.maxMessageBytes,
    credentials: serverCredentials({
      cert: config.DEVPOOL_TLS_CERT,
      key: config.DEVPOOL_TLS_KEY,
      names: { cert: 'DEVPOOL_TLS_CERT', key: 'DEVPOOL_TLS_KEY', clientCa: '' },
    }),
    shutdownGraceMs: 2000,
  });
}
