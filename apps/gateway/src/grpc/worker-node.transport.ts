import type { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { WorkerNodeServiceService } from '@hivemind/shared/proto/generated/nodepool';
import { GrpcTransport, servicePackage } from '@hivemind/shared/proto/grpc-transport';
import { decodeExecuteTaskRequest } from '@hivemind/shared/proto/zero-copy';
import { callerInterceptor } from '@hivemind/shared/security/caller-interceptor';
import { serverCredentials } from '@hivemind/shared/security/tls';
import { CallerGuardService } from './caller-guard.service';

/** The methods a worker serves; the rest of WorkerNodeService is the pool's. */
const SERVED: string[] = [WorkerNodeServiceService.executeTask.path, WorkerNodeServiceService.stopTaskExecution.path];

/**
 * The gateway's gRPC face on GRPC_BIND:GRPC_PORT (50053), as a Nest microservice
 * transport driving WorkerNodeController: messages up to MAX_MESSAGE_MB, TLS or mTLS
 * when configured, ExecuteTask decoded without copying the zip out of the message,
 * and every caller checked on its metadata before a byte of its body is read (methods
 * served by the pool are refused there too, so nobody can make the node read 1 GiB
 * just to answer UNIMPLEMENTED).
 */
export function workerNodeTransport(config: WorkerConfig, callers: CallerGuardService): GrpcTransport {
  const guard = callerInterceptor(
    SERVED,
    (method, peer, md) => callers.check(method, peer, md),
    '; this node takes tasks only from its Node Pool',
    Object.values(WorkerNodeServiceService)
      .map((m) => m.path)
      .filter((p) => !SERVED.includes(p)),
  );
  return new GrpcTransport({
    url: `${config.GRPC_BIND}:${config.GRPC_PORT}`,
    package: 'nodepool',
    packageDefinition: servicePackage(
      { 'nodepool.WorkerNodeService': WorkerNodeServiceService },
      // Task zips reach 500 MB: the zip stays a view of the received message.
      { [WorkerNodeServiceService.executeTask.path]: decodeExecuteTaskRequest },
    ),
    maxMessageBytes: config.maxMessageBytes,
    interceptors: [guard],
    credentials: serverCredentials({
      cert: config.GRPC_TLS_CERT,
      key: config.GRPC_TLS_KEY,
      clientCa: config.GRPC_TLS_CLIENT_CA,
      names: { cert: 'GRPC_TLS_CERT', key: 'GRPC_TLS_KEY', clientCa: 'GRPC_TLS_CLIENT_CA' },
    }),
  });
}
