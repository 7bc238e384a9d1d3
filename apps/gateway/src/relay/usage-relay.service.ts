import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { grpcErrorText } from '@hivemind/shared/proto/grpc';
import { RunningTasks } from '@hivemind/shared/state/running-tasks';
import { Ticker } from '@hivemind/shared/util/ticker';
import { PoolLinkService } from '../pool/pool-link.service';

/** Sends each running task's CPU and memory use to the pool about every TASK_USAGE_INTERVAL. */
@Injectable()
export class UsageRelayService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly ticker: Ticker;

  constructor(
    @Inject(WORKER_CONFIG) config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly running: RunningTasks,
    private readonly pool: PoolLinkService,
  ) {
    this.ticker = new Ticker('task-usage', config.TASK_USAGE_INTERVAL * 1000, () => this.relay(), (name, err) =>
      this.logger.debug({ job: name, err: grpcErrorText(err) }, 'usage relay failed'),
    );
  }

  onApplicationBootstrap(): void {
    this.ticker.start(false);
  }

  onApplicationShutdown(): void {
    this.ticker.stop();
  }

  private async relay(): Promise<void> {
    if (!this.pool.client.loggedIn) return;
    const running = await this.running.all();
    await Promise.all(
      [...running].map(([taskId, t]) => {
        // Deployed workers put their username in `token`; the JWT rides in metadata.
        return this.pool
          .call('TaskUsage', this.pool.client.workers, this.pool.client.workers.taskUsage, () => ({
            task_id: taskId,
            cpu_usage: t.cpuPercent,
            memory_usage: t.memoryPercent,
            gpu_usage: 0,
            gpu_memory_usage: 0,
            token: this.pool.nodeId,
          }))
          .catch((err) => this.logger.debug({ taskId, err: grpcErrorText(err) }, 'task usage not delivered'));
      }),
    );
  }
}
