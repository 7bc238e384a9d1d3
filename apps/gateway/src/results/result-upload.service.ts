import { promises as fs } from 'node:fs';
import { Inject, Injectable } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { ResultJob } from '@hivemind/shared/queue/queues';
import { ControlChannel } from '@hivemind/shared/state/control-channel';
import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { RefusedResult, RefusedResults, refusedRetryDelayMs } from '@hivemind/shared/state/refused-results';
import { TaskRecords } from '@hivemind/shared/state/task-records';
import { TASK_STORE, TaskStore } from '@hivemind/shared/state/task-store';
import { crashPoint } from '@hivemind/shared/util/crash-point';
import { grpcErrorText } from '@hivemind/shared/proto/grpc';
import { sleep } from '@hivemind/shared/util/ticker';
import { errorMessage } from '@hivemind/shared/util/errors';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { PoolLinkService } from '../pool/pool-link.service';
import { TaskHistoryService } from './task-history.service';
import { classifyUploadError, ResultRefusedError } from './upload-failure';

/**
 * Uploads one finished task's result zip with TaskResultUpload, never sooner than
 * RESULT_UPLOAD_GUARD after the ExecuteTask reply (the deployed pool records an
 * accepted task about 200 ms after replying, and a result landing before that is lost).
 * Throws when the pool did not take it, so the queue retries with backoff.
 *
 * A failure the pool could not help (unavailable, deadline, internal) is retried soon,
 * the task keeping its slot. A refusal (a reply with success=false: e.g. a pool that
 * forgot the task) frees the task's slot at once and throws ResultRefusedError: the
 * result is kept and retried slowly (RefusedResults) until RESULT_REFUSED_RETRY has
 * passed since the first refusal; a failure after that gives the result up for good.
 */
@Injectable()
export class ResultUploadService {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly ledger: ResourceLedger,
    readonly refused: RefusedResults,
    private readonly records: TaskRecords,
    private readonly control: ControlChannel,
    private readonly pool: PoolLinkService,
    @Inject(TASK_STORE) private readonly store: TaskStore,
    private readonly history: TaskHistoryService,
    private readonly metrics: GatewayMetrics,
    private readonly workDir: WorkDir,
  ) {}

  /** Milliseconds still to wait before this task's result may be uploaded. */
  async guardWaitMs(taskId: string, now = Date.now()): Promise<number> {
    const guard = this.config.RESULT_UPLOAD_GUARD * 1000;
    if (guard <= 0) return 0;
    const record = await this.records.get(taskId);
    // No reply time yet: the reply is still on its way, so count from now.
    const from = record?.repliedAt || Math.max(now, record?.acceptedAt ?? 0);
    return Math.max(0, from + guard - now);
  }

  async upload(job: ResultJob): Promise<void> {
    const log = this.logger.child({ taskId: job.taskId });
    if (await this.records.isUploaded(job.taskId)) {
      // The pool took it before this gateway (or its predecessor) could tidy up; the
      // history entry may not have been written yet either.
      if (!(await this.history.get(job.taskId))) {
        const zip = await this.store.readResult(job.taskId, this.workDir.result(job.taskId)).catch(() => null);
        if (zip) await this.history.record(job, zip).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'task history not recorded'));
      }
      await this.finish(job);
      return;
    }
    const refused = await this.refused.get(job.taskId);
    // A refused result no longer holds a slot, and is still to be delivered.
    if (!refused && !(await this.ledger.holds(job.taskId))) {
      // Already delivered (its share was freed): a late copy from a stale executor.
      await Promise.all([fs.rm(this.workDir.result(job.taskId), { force: true }), this.store.removeResult(job.taskId)]);
      throw new UnrecoverableError(`the result of ${job.taskId} was already delivered; not uploading it twice`);
    }
    const wait = await this.guardWaitMs(job.taskId);
    if (wait > 0) await sleep(wait);
    let zip: Buffer;
    try {
      zip = await this.store.readResult(job.taskId, this.workDir.result(job.taskId));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // passing (EMFILE, EIO): retry
      // Gone: there is nothing left to upload, and retrying cannot bring it back.
      await this.finish(job);
      throw new UnrecoverableError(`the result file of ${job.taskId} is gone`);
    }
    this.metrics.uploadAttempts.inc();
    crashPoint(this.config.FAULT_CRASH_AT, 'result:before-upload');
    let res;
    try {
      res = await this.pool.call(
        'TaskResultUpload',
        this.pool.client.workers,
        this.pool.client.workers.taskResultUpload,
        (token) => ({ task_id: job.taskId, result_zip: zip, token }),
        this.uploadDeadlineMs(zip.length),
      );
    } catch (err) {
      this.metrics.uploadFailures.inc();
      if (classifyUploadError(err) === 'refused') return this.refusedBy(job, zip, grpcErrorText(err), refused);
      // The pool could not answer; past a refused result's deadline that ends it too.
      if (refused && Date.now() >= refused.until) return this.giveUp(job, zip, { ...refused, message: grpcErrorText(err) });
      throw err;
    }
    if (!res.success) {
      this.metrics.uploadFailures.inc();
      return this.refusedBy(job, zip, res.message || 'no reason given', refused);
    }
    // The one window the protocol leaves (it has no idempotent upload): a crash between
    // the pool's acknowledgement and this write uploads the result once more after the
    // restart. Nothing else happens in between; test/e2e/faults.test.ts counts it.
    crashPoint(this.config.FAULT_CRASH_AT, 'result:after-ack');
    await this.records.uploaded(job.taskId);
    crashPoint(this.config.FAULT_CRASH_AT, 'result:after-record');
    log.info({ status: job.status, bytes: zip.length, refusedBefore: refused?.refusals }, 'result uploaded');
    this.metrics.taskFinished(job);
    // The dashboard's history must never hold up or fail a delivered result.
    await this.history
      .record(job, zip, refused ? { delivery: 'uploaded', refused } : undefined)
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'task history not recorded'));
    await this.finish(job);
  }

  /**
   * The pool answered and will not take the result: free the slot, keep the result, and
   * retry it slowly until its deadline; after the deadline, give it up. Always throws.
   */
  private async refusedBy(job: ResultJob, zip: Buffer, message: string, prev: RefusedResult | null): Promise<never> {
    this.metrics.uploadsRefused.inc();
    const now = Date.now();
    const until = prev?.until ?? now + this.config.RESULT_REFUSED_RETRY * 1000;
    const refusals = (prev?.refusals ?? 0) + 1;
    const entry: RefusedResult = { taskId: job.taskId, refusedAt: prev?.refusedAt ?? now, until, refusals, message, nextAt: now };
    if (now >= until) return this.giveUp(job, zip, entry);
    const delay = refusedRetryDelayMs(refusals, now, until);
    entry.nextAt = now + delay;
    // Listed before the slot is freed: the executors' reconciler keeps the result file of a listed task.
    await this.refused.put(entry);
    if (await this.ledger.release(job.taskId)) {
      this.logger.warn({ taskId: job.taskId, message, until: new Date(until).toISOString() }, 'the pool refused the result; its slot is free, retrying slowly');
    }
    throw new ResultRefusedError(job.taskId, message, delay, until);
  }

  /** Gives a refused result up for good: recorded in the history as such, then deleted. */
  private async giveUp(job: ResultJob, zip: Buffer, entry: RefusedResult): Promise<never> {
    const log = this.logger.child({ taskId: job.taskId });
    log.warn({ refusals: entry.refusals, message: entry.message, since: new Date(entry.refusedAt).toISOString() }, 'result given up: the pool kept refusing it');
    this.metrics.uploadsGivenUp.inc();
    await this.history
      .record(job, zip, { delivery: 'given_up', refused: entry })
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'task history not recorded'));
    await this.finish(job);
    throw new UnrecoverableError(`the result of ${job.taskId} was given up: the pool refused it ${entry.refusals} times since ${new Date(entry.refusedAt).toISOString()} (${entry.message})`);
  }

  /** POOL_CALL_TIMEOUT, plus time to send the zip at a modest 5 MB/s. */
  uploadDeadlineMs(bytes: number): number {
    return this.config.POOL_CALL_TIMEOUT * 1000 + Math.ceil(bytes / (5 * 1024 * 1024)) * 1000;
  }

  /** The task is over for this node: free its share first, then its keys and file. */
  async finish(job: Pick<ResultJob, 'taskId'>): Promise<void> {
    await this.ledger.release(job.taskId);
    await Promise.all([this.records.remove(job.taskId), this.control.clearStop(job.taskId)]);
    await fs.rm(this.workDir.result(job.taskId), { force: true });
    await this.store.removeResult(job.taskId);
    // Last: while listed, the reconciler keeps the result file.
    await this.refused.remove(job.taskId);
  }
}
