import { promises as fs } from 'node:fs';
import { Inject, Injectable } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { ResultJob } from '@hivemind/shared/queue/queues';
import { RedisKeys } from '@hivemind/shared/queue/redis-keys';
import { ResourceLedger } from '@hivemind/shared/resources/ledger';
import { sleep } from '@hivemind/shared/util/ticker';
import { TASK_STORE, TaskStore } from '@hivemind/shared/task-store/task-store';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { PoolLinkService } from '../pool/pool-link.service';
import { TaskHistoryService } from './task-history.service';

/**
 * Uploads one finished task's result zip with TaskResultUpload, never sooner than
 * RESULT_UPLOAD_GUARD after the ExecuteTask reply (the deployed pool records an
 * accepted task about 200 ms after replying, and a result landing before that is lost).
 * Throws when the pool did not take it, so the queue retries with backoff.
 */
@Injectable()
export class ResultUploadService {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ledger: ResourceLedger,
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
    const [replied, accepted] = await this.redis.hmget(this.keys.task(taskId), 'repliedAt', 'acceptedAt');
    // No reply time yet: the reply is still on its way, so count from now.
    const from = Number(replied ?? 0) || Math.max(now, Number(accepted ?? 0));
    return Math.max(0, from + guard - now);
  }

  async upload(job: ResultJob): Promise<void> {
    const log = this.logger.child({ taskId: job.taskId });
    if (await this.redis.hexists(this.keys.task(job.taskId), 'uploadedAt')) {
      // The pool took it before this gateway (or its predecessor) could tidy up.
      await this.finish(job);
      return;
    }
    if (!(await this.ledger.holds(job.taskId))) {
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
      throw err;
    }
    if (!res.success) {
      this.metrics.uploadFailures.inc();
      throw new Error(`the pool did not take the result: ${res.message || 'no reason given'}`);
    }
    await this.redis.hset(this.keys.task(job.taskId), 'uploadedAt', Date.now());
    log.info({ status: job.status, bytes: zip.length }, 'result uploaded');
    this.metrics.taskFinished(job);
    // The dashboard's history must never hold up or fail a delivered result.
    await this.history.record(job, zip).catch((err: Error) => log.warn({ err: err.message }, 'task history not recorded'));
    await this.finish(job);
  }

  /** POOL_CALL_TIMEOUT, plus time to send the zip at a modest 5 MB/s. */
  uploadDeadlineMs(bytes: number): number {
    return this.config.POOL_CALL_TIMEOUT * 1000 + Math.ceil(bytes / (5 * 1024 * 1024)) * 1000;
  }

  /** The task is over for this node: free its share first, then its keys and file. */
  async finish(job: Pick<ResultJob, 'taskId'>): Promise<void> {
    await this.ledger.release(job.taskId);
    await this.redis.del(this.keys.task(job.taskId), this.keys.stop(job.taskId));
    await fs.rm(this.workDir.result(job.taskId), { force: true });
    await this.store.removeResult(job.taskId);
  }
}
