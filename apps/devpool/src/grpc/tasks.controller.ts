import { Controller, Inject, UseFilters } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import type {
  GetAllTasksResponse,
  GetTaskResultRequest,
  GetTaskResultResponse,
  StopTaskRequest,
  StopTaskResponse,
  TasklogRequest,
  TasklogResponse,
  UploadTaskRequest,
  UploadTaskResponse,
} from '@hivemind/shared/proto/generated/nodepool';
import { grpcErrorText, unary } from '@hivemind/shared/proto/grpc';
import { TokenAuthority } from '../auth';
import { PoolState } from '../pool-state';
import { WorkerDialer } from '../worker-dialer';
import { GrpcErrorsFilter } from './grpc-errors.filter';

/** MasterNodeService: users upload tasks, follow them, stop them and fetch results. */
@Controller()
@UseFilters(GrpcErrorsFilter)
export class TasksController {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly state: PoolState,
    private readonly tokens: TokenAuthority,
    private readonly dialer: WorkerDialer,
  ) {}

  @GrpcMethod('MasterNodeService', 'UploadTask')
  uploadTask(req: UploadTaskRequest, md: Metadata): UploadTaskResponse {
    const user = this.tokens.require(md);
    const res = this.state.upload(user.username, req);
    this.logger.info({ taskId: req.task_id, owner: user.username, bytes: req.task_zip?.length, ok: res.success }, 'task uploaded');
    return res;
  }

  @GrpcMethod('MasterNodeService', 'GetTaskResult')
  getTaskResult(req: GetTaskResultRequest, md: Metadata): GetTaskResultResponse {
    const t = this.ownTask(req.task_id, md);
    if (!t) return { success: false, message: `no task ${req.task_id} of yours`, result_zip: Buffer.alloc(0) };
    if (!t.result) return { success: false, message: `no result yet (status ${t.status})`, result_zip: Buffer.alloc(0) };
    return { success: true, message: t.status, result_zip: t.result };
  }

  @GrpcMethod('MasterNodeService', 'GetAllUserTasks')
  getAllUserTasks(_req: unknown, md: Metadata): GetAllTasksResponse {
    const user = this.tokens.require(md);
    return { tasks: [...this.state.tasks.values()].filter((t) => t.owner === user.username).map((t) => this.state.taskInfo(t)) };
  }

  @GrpcMethod('MasterNodeService', 'StopTask')
  async stopTask(req: StopTaskRequest, md: Metadata): Promise<StopTaskResponse> {
    const t = this.ownTask(req.task_id, md);
    if (!t) return { success: false, message: `no task ${req.task_id} of yours` };
    const nodeId = t.nodeId;
    this.state.stop(req.task_id);
    const node = nodeId ? this.state.nodes.get(nodeId) : undefined;
    if (!node) return { success: true, message: 'task stopped' };
    const client = this.dialer.client(node.hostname, node.port);
    try {
      const res = await unary(client, client.stopTaskExecution, { task_id: req.task_id }, this.dialer.metadata(), 50_000);
      return { success: true, message: `task stopped; worker says: ${res.message}` };
    } catch (err) {
      return { success: true, message: `task stopped; the worker could not be told: ${grpcErrorText(err)}` };
    } finally {
      client.close();
    }
  }

  @GrpcMethod('MasterNodeService', 'GetTasklog')
  getTasklog(req: TasklogRequest, md: Metadata): TasklogResponse {
    const t = this.ownTask(req.task_id, md);
    return t ? { success: true, log: t.log } : { success: false, log: '' };
  }

  /** The task if the caller (who must hold a valid token) owns it. */
  private ownTask(taskId: string, md: Metadata) {
    const user = this.tokens.require(md);
    const t = this.state.tasks.get(taskId);
    return t && t.owner === user.username ? t : undefined;
  }
}
