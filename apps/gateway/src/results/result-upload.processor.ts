import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { grpcErrorText } from '@hivemind/shared/proto/grpc';
import { bullOptions, parsePayload, QueueName, resultJobSchema } from '@hivemind/shared/queue/queues';
import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { checkTaskId } from '@hivemind/shared/task-format/task-id';
import { errorMessage } from '@hivemind/shared/util/errors';
import { backoffMs } from '@hivemind/shared/util/ticker';
import { HeartbeatService } from '../pool/heartbeat.service';
import { ResultUploadService } from './result-upload.service';
import { ResultRefusedError, uploadRetryDelayMs } from './upload-failure';

/**
 * Consumes the results queue: one upload per task, retried with capped backoff (up to
 * 30 s) while the pool cannot answer, and slowly (minutes) after the pool refused it.
 */
@Injectable()
export class ResultUploadProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private worker: Worker | null = null;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly ledger: ResourceLedger,
    private readonly uploads: ResultUploadService,
    private readonly heartbeat: HeartbeatService,
  ) {}

  onApplicationBootstrap(): void {
    this.worker = new Worker(QueueName.Results, (job) => this.process(job), {
      ...bullOptions(this.config, 'gateway-results'),
      concurrency: 4,
      // An upload held by a gateway that died is taken up again once its lock lapses.
      lockDuration: this.config.JOB_LOCK_DURATION * 1000,
      stalledInterval: this.config.JOB_LOCK_DURATION * 1000,
      maxStalledCount: 1_000_000,
      settings: {
        backoffStrategy: (attemptsMade: number, _type?: string, err?: Error) =>
          uploadRetryDelayMs(attemptsMade, err, (n) => backoffMs(n, 1000, 30_000)),
      },
    });
    this.worker.on('error', (err) => this.logger.warn({ err: err.message }, 'results worker error'));
    this.worker.on('failed', (job, err) =>
      this.logger.warn({ taskId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'result upload failed; will retry'),
    );
  }

  private async process(job: Job): Promise<void> {
    let payload;
    try {
      payload = parsePayload(resultJobSchema, job.data, 'result job');
      if (payload.taskId !== job.id) throw new Error(`the job id ${JSON.stringify(job.id)} is not its task id ${payload.taskId}`);
    } catch (err) {
      // Refused for good; a job id that is not a task id names nothing this node holds.
      if (job.id && !checkTaskId(job.id)) await this.ledger.release(job.id);
      throw new UnrecoverableError(errorMessage(err));
    }
    try {
      await this.uploads.upload(payload);
    } catch (err) {
      // Either way the task's slot is free now: the pool may hear at once that the node has room.
      if (err instanceof UnrecoverableError || err instanceof ResultRefusedError) {
        this.heartbeat.statusChanged();
        throw err;
      }
      throw new Error(grpcErrorText(err));
    }
    this.heartbeat.statusChanged();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }
}
