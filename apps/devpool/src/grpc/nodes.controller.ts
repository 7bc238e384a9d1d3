import { Controller, Inject, UseFilters } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import type { RegisterWorkerNodeRequest, RunningStatusRequest, RunningStatusResponse, StatusResponse } from '@hivemind/shared/proto/generated/nodepool';
import { TokenAuthority } from '../auth';
import { PoolState } from '../pool-state';
import { GrpcErrorsFilter } from './grpc-errors.filter';

/** NodeManagerService: workers register and report their status. */
@Controller()
@UseFilters(GrpcErrorsFilter)
export class NodesController {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly state: PoolState,
    private readonly tokens: TokenAuthority,
  ) {}

  @GrpcMethod('NodeManagerService', 'RegisterWorkerNode')
  registerWorkerNode(req: RegisterWorkerNodeRequest, md: Metadata): StatusResponse {
    this.tokens.require(md);
    const res = this.state.registerNode(req);
    this.logger.debug({ node: req.node_id, host: `${req.hostname}:${req.port}`, docker: req.docker_status, cpuScore: req.cpu_score, cores: req.cpu_cores, memoryGb: req.memory_gb }, 'node registered');
    return res;
  }

  @GrpcMethod('NodeManagerService', 'ReportStatus')
  reportStatus(req: RunningStatusRequest, md: Metadata): RunningStatusResponse {
    this.tokens.require(md);
    const usage = { cpu: req.cpu_usage, memory: req.memory_usage, gpu: req.gpu_usage, gpuMemory: req.gpu_memory_usage };
    const ok = this.state.reportStatus(req.node_id, req.status, usage, req.running_tasks, req.docker_status);
    if (ok === 'changed') this.logger.info({ node: req.node_id, status: req.status }, 'node status changed');
    else if (ok) this.logger.debug({ node: req.node_id, status: req.status }, 'node status reported');
    return ok ? { success: true, message: 'status recorded' } : { success: false, message: `node ${req.node_id} is not registered` };
  }
}
