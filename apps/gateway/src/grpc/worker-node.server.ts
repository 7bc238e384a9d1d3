import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { sendUnaryData, Server, ServerUnaryCall, status, UntypedHandleCall } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import {
  ExecuteTaskRequest,
  ExecuteTaskResponse,
  StopTaskExecutionRequest,
  StopTaskExecutionResponse,
  WorkerNodeServiceService,
} from '@hivemind/shared/proto/generated/nodepool';
import { bindServer, createGrpcServer, shutdownServer } from '@hivemind/shared/proto/grpc';
import { decodeExecuteTaskRequest } from '@hivemind/shared/proto/zero-copy';
import { callerInterceptor } from '@hivemind/shared/security/caller-interceptor';
import { serverCredentials } from '@hivemind/shared/security/tls';
import { AdmissionService } from '../admission/admission.service';
import { StopService } from '../admission/stop.service';
import { CallerGuardService } from './caller-guard.service';
import { errorMessage } from '@hivemind/shared/util/errors';

/**
 * The worker's half of WorkerNodeService on GRPC_PORT (50053), accepting messages up
 * to MAX_MESSAGE_MB. grpc-js is used directly (not Nest's gRPC transport) for the
 * per-server message cap, the caller's address and the generated ts-proto codecs.
 */
@Injectable()
export class WorkerNodeServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private server: Server | null = null;
  port = 0;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly admission: AdmissionService,
    private readonly stops: StopService,
    private readonly callers: CallerGuardService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Callers are checked by the interceptor, on their metadata, before the body is read.
    const served: string[] = [WorkerNodeServiceService.executeTask.path, WorkerNodeServiceService.stopTaskExecution.path];
    const guard = callerInterceptor(
      served,
      (method, peer, md) => this.callers.check(method, peer, md),
      '; this node takes tasks only from its Node Pool',
      Object.values(WorkerNodeServiceService).map((m) => m.path).filter((p) => !served.includes(p)),
    );
    const server = createGrpcServer(this.config.maxMessageBytes, [guard]);
    const handlers: Record<string, UntypedHandleCall> = {
      executeTask: (call: ServerUnaryCall<ExecuteTaskRequest, ExecuteTaskResponse>, cb: sendUnaryData<ExecuteTaskResponse>) =>
        void this.executeTask(call, cb),
      stopTaskExecution: (call: ServerUnaryCall<StopTaskExecutionRequest, StopTaskExecutionResponse>, cb: sendUnaryData<StopTaskExecutionResponse>) =>
        void this.stops
          .stop(call.request.task_id, call.getPeer())
          .then((res) => cb(null, res))
          .catch((err) => cb({ code: status.INTERNAL, details: `stop failed: ${errorMessage(err)}` }, null)),
    };
    // Task zips reach 500 MB: decode ExecuteTask without copying the zip out of the message.
    const service = {
      ...WorkerNodeServiceService,
      executeTask: { ...WorkerNodeServiceService.executeTask, requestDeserialize: decodeExecuteTaskRequest },
    };
    server.addService(service, handlers);
    const c = this.config;
    const creds = serverCredentials({
      cert: c.GRPC_TLS_CERT,
      key: c.GRPC_TLS_KEY,
      clientCa: c.GRPC_TLS_CLIENT_CA,
      names: { cert: 'GRPC_TLS_CERT', key: 'GRPC_TLS_KEY', clientCa: 'GRPC_TLS_CLIENT_CA' },
    });
    this.port = await bindServer(server, `${c.GRPC_BIND}:${c.GRPC_PORT}`, creds);
    this.server = server;
    const tls = c.GRPC_TLS_CERT ? (c.GRPC_TLS_CLIENT_CA ? 'mtls' : 'tls') : 'plaintext';
    this.logger.info({ port: this.port, maxMessageMb: c.MAX_MESSAGE_MB, transport: tls }, 'worker gRPC server listening');
  }


  private async executeTask(call: ServerUnaryCall<ExecuteTaskRequest, ExecuteTaskResponse>, cb: sendUnaryData<ExecuteTaskResponse>) {
    let res: ExecuteTaskResponse;
    try {
      res = await this.admission.admit(call.request, call.getPeer(), () => call.cancelled);
    } catch (err) {
      this.logger.error({ err, taskId: call.request.task_id }, 'ExecuteTask failed');
      res = { success: false, message: `the node failed to admit the task: ${errorMessage(err)}` };
    }
    cb(null, res);
    if (res.success && !call.cancelled) await this.admission.markReplied(call.request.task_id).catch(() => undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.server) await shutdownServer(this.server);
  }
}
