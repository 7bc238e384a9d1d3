import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod, RpcException } from '@nestjs/microservices';
import { Metadata, ServerUnaryCall, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import type {
  ExecuteTaskRequest,
  ExecuteTaskResponse,
  StopTaskExecutionRequest,
  StopTaskExecutionResponse,
} from '@hivemind/shared/proto/generated/nodepool';
import { errorMessage } from '@hivemind/shared/util/errors';
import { AdmissionService } from '../admission/admission.service';
import { StopService } from '../admission/stop.service';

/**
 * The worker's half of WorkerNodeService, served by the gateway's gRPC transport
 * (worker-node.transport.ts). Callers were checked on their metadata before the body
 * was read; the ExecuteTask request arrives with its zip as a view of the received bytes.
 */
@Controller()
export class WorkerNodeController {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly admission: AdmissionService,
    private readonly stops: StopService,
  ) {}

  @GrpcMethod('WorkerNodeService', 'ExecuteTask')
  async executeTask(req: ExecuteTaskRequest, _md: Metadata, call: ServerUnaryCall<ExecuteTaskRequest, ExecuteTaskResponse>): Promise<ExecuteTaskResponse> {
    let res: ExecuteTaskResponse;
    try {
      res = await this.admission.admit(req, call.getPeer(), () => call.cancelled);
    } catch (err) {
      this.logger.error({ err, taskId: req.task_id }, 'ExecuteTask failed');
      res = { success: false, message: `the node failed to admit the task: ${errorMessage(err)}` };
    }
    if (res.success) {
      // Nest hands the reply to grpc-js a few microtasks after this returns; by the next
      // turn of the event loop it is sent, unless the pool hung up first.
      setImmediate(() => {
        if (!call.cancelled) void this.admission.markReplied(req.task_id).catch(() => undefined);
      });
    }
    return res;
  }

  @GrpcMethod('WorkerNodeService', 'StopTaskExecution')
  async stopTaskExecution(req: StopTaskExecutionRequest, _md: Metadata, call: ServerUnaryCall<StopTaskExecutionRequest, StopTaskExecutionResponse>): Promise<StopTaskExecutionResponse> {
    try {
      return await this.stops.stop(req.task_id, call.getPeer());
    } catch (err) {
      throw new RpcException({ code: status.INTERNAL, message: `stop failed: ${errorMessage(err)}` });
    }
  }
}
