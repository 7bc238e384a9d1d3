import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { openQueue, QueueName, ResultJob, resultJobOptions } from '@hivemind/shared/queue/queues';
import { TaskRecords } from '@hivemind/shared/state/task-records';
import { TASK_STORE, TaskStore, TaskStoreError } from '@hivemind/shared/state/task-store';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import { TaskEvents } from '../task-events';
import { withRetries } from './retry';

/**
 * The last step before clean-up: makes the result zip reachable by the gateway
 * (TASK_STORE=redis puts it into Redis), records it behind the job's lock (one result
 * per task, from the holder of the lock) and queues it for upload. Each Redis call
 * rides out short outages (10 tries, at most 5 s apart).
 */
@Injectable()
export class PublishStep implements OnApplicationShutdown {
  private readonly results: Queue;

  constructor(
    @Inject(WORKER_CONFIG) config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly records: TaskRecords,
    @Inject(TASK_STORE) private readonly store: TaskStore,
    private readonly workDir: WorkDir,
    private readonly events: TaskEvents,
  ) {
    this.results = openQueue(QueueName.Results, config, 'executor', logger);
  }

  /** Makes the task's result zip reachable by the gateway. */
  putResult(taskId: string): Promise<void> {
    return withRetries(() => this.store.putResult(taskId, this.workDir.result(taskId)), { fatal: (err) => err instanceof TaskStoreError });
  }

  /** The result of this task already queued for upload (a redelivered job), if any. */
  async queued(taskId: string): Promise<boolean> {
    return Boolean(await this.results.getJob(taskId));
  }

  /** The result an earlier holder of the job recorded but may not have queued. */
  recorded(taskId: string): Promise<ResultJob | null> {
    return this.records.recordedResult(taskId);
  }

  /**
   * Records and queues the result. `stale`: this executor lost the job's lock while the
   * task ran (another executor owns it now); `released`: the node no longer holds the
   * task. In both cases nothing is queued. Otherwise returns the result queued, which
   * is an earlier holder's when one recorded it first.
   */
  async deliver(result: ResultJob, token: string): Promise<ResultJob | 'stale' | 'released'> {
    const fenced = await withRetries(() => this.records.recordResult(result, token));
    if (fenced.outcome === 'stale' || fenced.outcome === 'released') return fenced.outcome;
    if (fenced.outcome === 'exists') this.logger.warn({ taskId: result.taskId }, "an earlier executor recorded this task's result; queueing that one");
    await this.queue(fenced.result);
    this.events.ended(fenced.result);
    return fenced.result;
  }

  queue(result: ResultJob): Promise<unknown> {
    return withRetries(() => this.results.add('upload', result, resultJobOptions(result.taskId)));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.results.close();
  }
}
