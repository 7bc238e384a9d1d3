import * as os from 'node:os';
import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { bullOptions, parsePayload, QueueName, taskJobSchema } from '@hivemind/shared/queue/queues';
import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { StateLink } from '@hivemind/shared/state/state.module';
import { checkTaskId } from '@hivemind/shared/task-format/task-id';
import { errorMessage } from '@hivemind/shared/util/errors';
import { DiskGuardService } from './disk-guard.service';
import { TaskPipeline } from './pipeline/task-pipeline';
import { ReconcilerService } from './reconciler.service';
import { RuntimeService } from './runtime/runtime.service';

/** The executor's BullMQ worker: parses each job and hands it to the task pipeline; starts once a runtime is ready. */
@Injectable()
export class TaskProcessor implements OnApplicationBootstrap {
  readonly executorId = `${os.hostname()}-${process.pid}`;
  private worker: Worker | null = null;
  ready = false;
  draining = false;
  private markReady!: () => void;
  readonly whenReady = new Promise<void>((resolve) => (this.markReady = resolve));

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly state: StateLink,
    private readonly ledger: ResourceLedger,
    private readonly runtimes: RuntimeService,
    private readonly pipeline: TaskPipeline,
    private readonly reconciler: ReconcilerService,
    private readonly diskGuard: DiskGuardService,
  ) {}

  onApplicationBootstrap(): void {
    const lockMs = this.config.JOB_LOCK_DURATION * 1000;
    // A job whose executor died is redelivered when its lock lapses; its successor adopts the container.
    this.worker = new Worker(QueueName.Tasks, (job, token) => this.process(job, token), {
      ...bullOptions(this.config, 'executor-tasks'),
      concurrency: this.config.executorConcurrency,
      autorun: false,
      lockDuration: lockMs,
      stalledInterval: lockMs,
      maxStalledCount: 5,
    });
    this.worker.on('error', (err) => this.logger.warn({ err: err.message }, 'tasks worker error'));
    void this.startWhenReady();
  }

  private async startWhenReady(): Promise<void> {
    await this.state.ping();
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
      if (task.taskId !== job.id) throw new Error(`the job id ${JSON.stringify(job.id)} is not its task id ${task.taskId}`);
    } catch (err) {
      // Refused for good: a job the gateway did not write could name any file.
      this.logger.error({ jobId: job.id, err: errorMessage(err) }, 'refusing a malformed task job');
      if (job.id && !checkTaskId(job.id)) await this.ledger.release(job.id);
      throw new UnrecoverableError(errorMessage(err));
    }
    await this.pipeline.handle(task, token ?? '', this.executorId, job.attemptsStarted === 1);
  }

  /** The drain on SIGTERM: take no new task, drain the pipeline, close once every result is queued. */
  async beforeApplicationShutdown(): Promise<void> {
    if (!this.worker) return;
    this.draining = true;
    try {
      await this.worker.pause(true).catch(() => undefined);
      await this.pipeline.drain(this.config.DRAIN_TIMEOUT * 1000);
    } finally {
      await this.worker.close();
    }
  }
}
