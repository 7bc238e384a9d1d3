import { Controller, Inject, UseFilters } from '@nestjs/common';
import { GrpcMethod, RpcException } from '@nestjs/microservices';
import { Metadata, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import type {
  TaskOutputRequest,
  TaskOutputResponse,
  TaskOutputUploadRequest,
  TaskOutputUploadResponse,
  TaskResultUploadRequest,
  TaskResultUploadResponse,
  TaskUsageRequest,
  TaskUsageResponse,
} from '@hivemind/shared/proto/generated/nodepool';
import { TokenAuthority } from '../auth';
import { PoolState } from '../pool-state';
import { GrpcErrorsFilter } from './grpc-errors.filter';

/** The pool's half of WorkerNodeService: workers stream output, report usage and upload results. */
@Controller()
@UseFilters(GrpcErrorsFilter)
export class WorkerSideController {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly state: PoolState,
    private readonly tokens: TokenAuthority,
  ) {}

  @GrpcMethod('WorkerNodeService', 'ExecuteTask')
  executeTask(): never {
    return this.servedByWorkers();
  }

  @GrpcMethod('WorkerNodeService', 'StopTaskExecution')
  stopTaskExecution(): never {
    return this.servedByWorkers();
  }

  @GrpcMethod('WorkerNodeService', 'TaskOutputUpload')
  taskOutputUpload(req: TaskOutputUploadRequest, md: Metadata): TaskOutputUploadResponse {
    return this.output(req, md);
  }

  @GrpcMethod('WorkerNodeService', 'TaskOutput')
  taskOutput(req: TaskOutputRequest, md: Metadata): TaskOutputResponse {
    return this.output(req, md);
  }

  @GrpcMethod('WorkerNodeService', 'TaskResultUpload')
  taskResultUpload(req: TaskResultUploadRequest, md: Metadata): TaskResultUploadResponse {
    const user = this.tokens.require(md);
    const res = this.state.storeResult(req.task_id, req.result_zip, user.username);
    this.logger.info({ taskId: req.task_id, bytes: req.result_zip?.length, ok: res.success }, 'result received');
    return res;
  }

  @GrpcMethod('WorkerNodeService', 'TaskUsage')
  taskUsage(req: TaskUsageRequest, md: Metadata): TaskUsageResponse {
    this.tokens.require(md);
    const usage = { cpu: req.cpu_usage, memory: req.memory_usage, gpu: req.gpu_usage, gpuMemory: req.gpu_memory_usage };
    // task_id "0": node-wide usage, with the node id in `token`.
    const ok = req.task_id === '0' ? this.state.setNodeUsage(req.token, usage) : this.state.setUsage(req.task_id, usage);
    return ok ? { success: true, message: '' } : { success: false, message: `unknown ${req.task_id === '0' ? 'node' : 'task'}` };
  }

  private output(req: { task_id: string; output: string }, md: Metadata): { success: boolean; message: string } {
    this.tokens.require(md);
    return this.state.appendOutput(req.task_id, req.output) ? { success: true, message: '' } : { success: false, message: `unknown task ${req.task_id}` };
  }

  private servedByWorkers(): never {
    throw new RpcException({ code: status.UNIMPLEMENTED, details: 'ExecuteTask and StopTaskExecution are served by workers, not by the pool' });
  }
}
