import * as os from 'node:os';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DelayedError, Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { openQueue, parsePayload, QueueName, ResultJob, resultJobOptions, taskJobSchema } from '@hivemind/shared/queue/queues';
import { RedisKeys } from '@hivemind/shared/queue/redis-keys';
import { ResultFence } from '@hivemind/shared/queue/result-fence';
import { ResourceLedger } from '@hivemind/shared/resources/ledger';
import { sleep } from '@hivemind/shared/util/ticker';
import { DiskGuardService } from './disk-guard.service';
import { ReconcilerService } from './reconciler.service';
import { RuntimeService } from './runtime/runtime.service';
import { TaskRunnerService } from './task-runner.service';

/**
 * The executor's BullMQ worker on the tasks queue. Created paused (autorun: false)
 * and started only once Redis answers and a task runtime is ready.
 */
@Injectable()
export class TaskProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly executorId = `${os.hostname()}-${process.pid}`;
  private worker: Worker | null = null;
  private results: Queue;
  private readonly fence: ResultFence;
  ready = false;
  draining = false;
  private markReady!: () => void;
  /** Resolves once the worker consumes tasks. */
  readonly whenReady = new Promise<void>((resolve) => (this.markReady = resolve));

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ledger: ResourceLedger,
    private readonly runtimes: RuntimeService,
    private readonly runner: TaskRunnerService,
    private readonly reconciler: ReconcilerService,
    private readonly diskGuard: DiskGuardService,
  ) {
    this.results = openQueue(QueueName.Results, redis, keys, logger);
    this.fence = new ResultFence(redis, keys);
  }

  onApplicationBootstrap(): void {
    const lockMs = this.config.JOB_LOCK_DURATION * 1000;
    this.worker = new Worker(QueueName.Tasks, (job, token) => this.process(job, token), {
      connection: this.redis.duplicate({ connectionName: 'hivemind-executor-tasks' }),
      prefix: this.keys.bullPrefix,
      concurrency: this.config.executorConcurrency,
      autorun: false,
      // A job whose executor died is handed out again after its lock lapses; the next
      // executor adopts the task's container, so a redelivery never runs a task twice.
      lockDuration: lockMs,
      stalledInterval: lockMs,
      maxStalledCount: 5,
    });
    this.worker.on('error', (err) => this.logger.warn({ err: err.message }, 'tasks worker error'));
    void this.startWhenReady();
  }

  private async startWhenReady(): Promise<void> {
    await this.redis.ping();
    const runtime = await this.runtimes.resolve();
    if (!runtime || !this.worker) return;
    this.ready = true;
    this.markReady();
    this.reconciler.start();
    this.diskGuard.start();
    this.logger.info({ runtime: runtime.name, concurrency: this.config.executorConcurrency, executorId: this.executorId }, 'executor ready; consuming tasks');
    void this.worker.run().catch((err) => this.logger.error({ err }, 'tasks worker stopped'));
  }

  private async process(job: Job, token?: string): Promise<void> {
    if (this.draining && token) {
      // Fetched after the drain began: hand it back for another executor (or our successor).
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    let task;
    try {
      task = parsePayload(taskJobSchema, job.data, 'task job');
    } catch (err) {
      this.logger.error({ jobId: job.id, err: (err as Error).message }, 'dropping a malformed task job');
      if (job.id) await this.ledger.release(job.id);
      throw new UnrecoverableError((err as Error).message);
    }
    // A redelivered job (its executor died) whose result was already queued, or whose
    // task the node no longer holds, has nothing left to do but tidy up. One whose
    // result an earlier holder recorded but did not queue gets that result queued.
    if ((await this.results.getJob(task.taskId)) || !(await this.ledger.holds(task.taskId))) {
      this.logger.info({ taskId: task.taskId }, 'task already delivered; not running it again');
      await this.runner.release(task);
      return;
    }
    const earlier = await this.fence.recorded(task.taskId);
    if (earlier) {
      this.logger.info({ taskId: task.taskId }, 'task finished under an earlier executor; queueing its recorded result');
      await this.queueResult(earlier);
      await this.runner.release(task);
      return;
    }
    let result: ResultJob;
    try {
      result = await this.runner.run(task, this.executorId);
    } catch (err) {
      this.logger.error({ taskId: task.taskId, err: (err as Error).message }, 'task run failed; sending a failure result');
      try {
        result = await this.runner.failureFor(task.taskId, `the executor failed while finishing the task: ${(err as Error).message}`, task.entry.file);
      } catch (err2) {
        // Nothing can be written: free the task's share so the node does not stay full.
        await this.ledger.release(task.taskId);
        throw new UnrecoverableError(`no result could be written for ${task.taskId}: ${(err2 as Error).message}`);
      }
    }
    // One result per task, from a holder of the job's lock. Two executors can end up
    // watching one container (one presumed dead whose lock lapsed, and the one that
    // took the job over): the stale one is fenced off and leaves everything to the other.
    const fenced = await this.withRetries(() => this.fence.record(result, token ?? ''));
    if (fenced.outcome === 'stale') {
      this.logger.warn({ taskId: task.taskId }, 'this executor lost the job lock while the task ran; another executor owns it now, dropping our result');
      return;
    }
    if (fenced.outcome === 'released') {
      this.logger.warn({ taskId: task.taskId }, 'the node no longer holds this task; dropping our result');
      return;
    }
    if (fenced.outcome === 'exists') this.logger.warn({ taskId: task.taskId }, 'an earlier executor recorded this task\'s result; queueing that one');
    await this.queueResult(fenced.result);
    // A failed task's workspace is kept for FAILED_WORKSPACE_RETENTION, for debugging.
    await this.runner.release(task, fenced.result.status === 'Failed');
  }

  private async queueResult(result: ResultJob): Promise<void> {
    await this.withRetries(() => this.results.add('upload', result, resultJobOptions(result.taskId)));
  }

  /** A Redis blip here must not turn a finished task into a lost one. */
  private async withRetries<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= 10) throw err;
        await sleep(Math.min(5000, 250 * 2 ** attempt));
      }
    }
  }

  /**
   * The drain on SIGTERM: take no new task, let running ones finish for up to
   * DRAIN_TIMEOUT, then stop the rest (their results say Stopped) and close once
   * every result is queued, so no job is left behind in active.
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (!this.worker) return;
    this.draining = true;
    await this.worker.pause(true).catch(() => undefined);
    const deadline = Date.now() + this.config.DRAIN_TIMEOUT * 1000;
    if (this.runner.runningCount) this.logger.info({ running: this.runner.runningCount, drainTimeoutS: this.config.DRAIN_TIMEOUT }, 'draining');
    while (this.runner.runningCount > 0 && Date.now() < deadline) await sleep(200);
    const left = this.runner.stopAll('stopped because the node is shutting down');
    if (left) this.logger.warn({ stopped: left }, 'drain timeout reached; stopping the remaining tasks');
    await this.worker.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
    await this.results.close();
  }
}
