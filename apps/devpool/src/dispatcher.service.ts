import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { DEVPOOL_CONFIG, DevpoolConfig } from '@hivemind/shared/config/devpool-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { grpcErrorText, unary } from '@hivemind/shared/proto/grpc';
import { Ticker } from '@hivemind/shared/util/ticker';
import { PoolNode, PoolState, PoolTask } from './pool-state';
import { WorkerDialer } from './worker-dialer';

/**
 * The dispatcher tick (DEVPOOL_DISPATCH_INTERVAL, 10 s by default): offers pending
 * tasks to Idle nodes over a fresh channel with a deadline, records accepted ones
 * ~200 ms after the reply, leaves refused ones pending, and applies the liveness rule.
 */
@Injectable()
export class DispatcherService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly ticker: Ticker;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    @Inject(DEVPOOL_CONFIG) private readonly config: DevpoolConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly state: PoolState,
    private readonly dialer: WorkerDialer,
  ) {
    this.ticker = new Ticker('dispatch', config.DEVPOOL_DISPATCH_INTERVAL * 1000, () => this.tick(), (_n, err) =>
      this.logger.error({ err }, 'dispatch tick failed'),
    );
  }

  onApplicationBootstrap(): void {
    this.ticker.start(false);
  }

  onApplicationShutdown(): void {
    this.ticker.stop();
    for (const t of this.timers) clearTimeout(t);
  }

  async tick(): Promise<void> {
    for (const t of this.state.enforceLiveness()) this.logger.warn({ taskId: t.taskId, node: t.nodeId }, 'task FAILED: node silent');
    for (const task of this.state.pending()) {
      const node = this.state.dispatchable().find((n) => this.state.fits(task, n));
      if (!node) continue;
      await this.offer(task, node);
    }
  }

  private deadlineMs(task: PoolTask): number {
    // About 40 s, longer for big zips (1 s more per 10 MB).
    return this.config.DEVPOOL_EXECUTE_DEADLINE * 1000 + Math.floor(task.zip.length / (10 * 1024 * 1024)) * 1000;
  }

  private async offer(task: PoolTask, node: PoolNode): Promise<void> {
    const address = `${node.hostname}:${node.port}`;
    const client = this.dialer.client(node.hostname, node.port);
    task.offers += 1;
    try {
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + this.config.DEVPOOL_CONNECT_TIMEOUT * 1000, (err) => (err ? reject(err) : resolve())),
      );
      const res = await unary(
        client,
        client.executeTask,
        {
          task_id: task.taskId,
          task_zip: task.zip,
          cpu_usage: task.cpuScore,
          gpu_usage: task.gpuScore,
          memory_gb: task.memoryGb,
          gpu_memory_gb: task.gpuMemoryGb,
        },
        this.dialer.metadata(),
        this.deadlineMs(task),
      );
      if (!res.success) {
        task.message = `refused by ${node.node_id}: ${res.message}`;
        this.logger.info({ taskId: task.taskId, node: node.node_id, reason: res.message }, 'task refused; stays pending');
        return;
      }
      this.logger.info({ taskId: task.taskId, node: node.node_id }, 'task dispatched');
      task.dispatching = true;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.state.recordDispatch(task, node);
      }, this.config.DEVPOOL_RECORD_DELAY_MS);
      this.timers.add(timer);
    } catch (err) {
      task.message = `could not reach ${node.node_id} at ${address}: ${grpcErrorText(err)}`;
      this.logger.warn({ taskId: task.taskId, node: node.node_id, err: grpcErrorText(err) }, 'dispatch failed; stays pending');
    } finally {
      client.close();
    }
  }
}
