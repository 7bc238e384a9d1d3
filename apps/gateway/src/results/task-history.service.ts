import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { CptEstimate, describeCpt, estimateCpt } from '@hivemind/shared/earnings/cpt-estimate';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { ResultJob } from '@hivemind/shared/queue/queues';
import { RedisKeys, RunningTask } from '@hivemind/shared/queue/redis-keys';
import { RefusedResult } from '@hivemind/shared/queue/refused-results';
import { zipEntryTail } from '@hivemind/shared/task-format/zip-entry-tail';
import { Ticker } from '@hivemind/shared/util/ticker';
import { errorMessage } from '@hivemind/shared/util/errors';

/** One finished task as the dashboard lists it. */
export interface TaskHistoryEntry {
  taskId: string;
  status: ResultJob['status'];
  /** Why it ended, as a code (see libs/shared/src/task-format/outcome.ts); absent for results queued before codes. */
  code?: ResultJob['code'];
  reason: string;
  exitCode: number | null;
  receivedAt: number;
  startedAt: number;
  finishedAt: number;
  /** When the pool took the result; null when it was given up. */
  uploadedAt: number | null;
  /**
   * How the result left the node: `uploaded` (the pool took it) or `given_up` (the pool
   * kept refusing it for RESULT_REFUSED_RETRY; deleted). Absent on entries written
   * before refusals were told apart: those were uploaded.
   */
  delivery?: 'uploaded' | 'given_up';
  /** When the pool first refused the result, how often, and its last answer (absent when never refused). */
  refused?: { at: number; until: number; refusals: number; message: string };
  durationSeconds: number;
  queueWaitSeconds: number;
  resultBytes: number;
  avgCpuPercent: number;
  avgMemoryPercent: number;
  usageSamples: number;
  cpt: CptEstimate;
  cptExplained: string;
  /** The end of task_logs.txt (TASK_HISTORY_LOG_KB). */
  logsTail: string;
}

/**
 * Adds a running task's usage sample to its sums, once per sample (the executor
 * stamps each with usageAt). KEYS[1] usage hash; ARGV usageAt, cpu, mem, ttl.
 */
const ADD_SAMPLE = `
local last = tonumber(redis.call('HGET', KEYS[1], 'lastAt') or '0')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('HSET', KEYS[1], 'lastAt', ARGV[1])
redis.call('HINCRBYFLOAT', KEYS[1], 'cpuSum', ARGV[2])
redis.call('HINCRBYFLOAT', KEYS[1], 'memSum', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'samples', 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1`;

/**
 * The last TASK_HISTORY_SIZE finished tasks, kept in Redis: status, duration, exit
 * reason, result size, average usage, the CPT estimate and the end of the logs.
 * Keeps a running average of each running task's CPU and memory use from the
 * executor's samples (RedisKeys.running), and writes an entry when the pool has taken
 * the task's result.
 */
@Injectable()
export class TaskHistoryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly ticker: Ticker;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.ticker = new Ticker('usage-average', config.TASK_USAGE_INTERVAL * 1000, () => this.sampleUsage(), (_n, err) =>
      this.logger.debug({ err: errorMessage(err) }, 'usage averaging failed'),
    );
  }

  onApplicationBootstrap(): void {
    this.ticker.start(false);
  }

  onApplicationShutdown(): void {
    this.ticker.stop();
  }

  /** Folds each running task's newest usage sample into its sums. */
  async sampleUsage(): Promise<void> {
    const running = await this.redis.hgetall(this.keys.running);
    const ttl = Math.ceil(this.config.TASK_TIMEOUT + 86_400);
    for (const [taskId, raw] of Object.entries(running)) {
      const t = JSON.parse(raw) as RunningTask;
      // The first entry (before any sample) carries zeros at usageAt = startedAt.
      if (t.usageAt <= t.startedAt) continue;
      await this.redis.eval(ADD_SAMPLE, 1, this.keys.taskUsage(taskId), t.usageAt, t.cpuPercent, t.memoryPercent, ttl);
    }
  }

  /** Average CPU and memory use of a task over its samples (zeros without any). */
  async averages(taskId: string): Promise<{ cpu: number; memory: number; samples: number }> {
    const [cpuSum, memSum, samples] = await this.redis.hmget(this.keys.taskUsage(taskId), 'cpuSum', 'memSum', 'samples');
    const n = Number(samples ?? 0);
    return n > 0 ? { cpu: Number(cpuSum) / n, memory: Number(memSum) / n, samples: n } : { cpu: 0, memory: 0, samples: 0 };
  }

  /** Records a task whose result the pool took, or (`given_up`) that the node gave up after refusals. */
  async record(job: ResultJob, zip: Buffer, after?: { delivery: 'uploaded' | 'given_up'; refused: RefusedResult }): Promise<TaskHistoryEntry> {
    const givenUp = after?.delivery === 'given_up';
    await this.sampleUsage().catch(() => undefined);
    const avg = await this.averages(job.taskId);
    const durationSeconds = Math.max(0, (job.finishedAt - job.startedAt) / 1000);
    const cpt = estimateCpt({ durationSeconds, avgCpuPercent: avg.cpu, avgMemoryPercent: avg.memory, avgGpuPercent: 0 });
    let logsTail = '';
    if (this.config.TASK_HISTORY_LOG_KB > 0) {
      logsTail = (await zipEntryTail(zip, 'task_logs.txt', this.config.TASK_HISTORY_LOG_KB * 1024).catch(() => null)) ?? '';
    }
    const entry: TaskHistoryEntry = {
      taskId: job.taskId,
      status: job.status,
      code: job.code,
      reason: job.reason,
      exitCode: job.exitCode,
      receivedAt: job.receivedAt,
      startedAt: job.startedAt,
      finishedAt: job.finishedAt,
      uploadedAt: givenUp ? null : Date.now(),
      durationSeconds,
      queueWaitSeconds: Math.max(0, (job.startedAt - job.receivedAt) / 1000),
      resultBytes: zip.length,
      avgCpuPercent: Math.round(avg.cpu * 100) / 100,
      avgMemoryPercent: Math.round(avg.memory * 100) / 100,
      usageSamples: avg.samples,
      cpt,
      cptExplained: describeCpt(cpt),
      logsTail,
    };
    if (after) {
      const r = after.refused;
      entry.delivery = after.delivery;
      entry.refused = { at: r.refusedAt, until: r.until, refusals: r.refusals, message: r.message };
    }
    await this.redis
      .multi()
      .lpush(this.keys.history, JSON.stringify(entry))
      .ltrim(this.keys.history, 0, this.config.TASK_HISTORY_SIZE - 1)
      .del(this.keys.taskUsage(job.taskId))
      .exec();
    return entry;
  }

  /** The newest `limit` entries, newest first. */
  async list(limit = this.config.TASK_HISTORY_SIZE): Promise<TaskHistoryEntry[]> {
    const raw = await this.redis.lrange(this.keys.history, 0, limit - 1);
    return raw.map((r) => JSON.parse(r) as TaskHistoryEntry);
  }

  /** The newest entry of one task, or null. */
  async get(taskId: string): Promise<TaskHistoryEntry | null> {
    return (await this.list()).find((e) => e.taskId === taskId) ?? null;
  }

  /** Sum of the CPT estimates over the kept history (the results the pool took). */
  async estimatedTotal(): Promise<{ total: number; tasks: number }> {
    const all = (await this.list()).filter((e) => e.delivery !== 'given_up');
    return { total: all.reduce((s, e) => s + e.cpt.total, 0), tasks: all.length };
  }
}
