import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { CptEstimate } from '../earnings/cpt-estimate';
import { resultJobSchema } from '../queue/queues';
import { RedisKeys } from './redis-keys';
import { defineScript, parseJson } from './scripts';

/** One finished task as the dashboard lists it. */
export const taskHistoryEntrySchema = z.object({
  taskId: z.string(),
  status: resultJobSchema.shape.status,
  /** Why it ended, as a code (see libs/shared/src/task-format/outcome.ts); absent for results queued before codes. */
  code: resultJobSchema.shape.code,
  reason: z.string(),
  exitCode: z.number().nullable(),
  receivedAt: z.number(),
  startedAt: z.number(),
  finishedAt: z.number(),
  /** When the pool took the result; null when it was given up. */
  uploadedAt: z.number().nullable(),
  /**
   * How the result left the node: `uploaded` (the pool took it) or `given_up` (the pool
   * kept refusing it for RESULT_REFUSED_RETRY; deleted). Absent on entries written
   * before refusals were told apart: those were uploaded.
   */
  delivery: z.enum(['uploaded', 'given_up']).optional(),
  /** When the pool first refused the result, how often, and its last answer (absent when never refused). */
  refused: z.object({ at: z.number(), until: z.number(), refusals: z.number(), message: z.string() }).optional(),
  durationSeconds: z.number(),
  queueWaitSeconds: z.number(),
  resultBytes: z.number(),
  avgCpuPercent: z.number(),
  avgMemoryPercent: z.number(),
  usageSamples: z.number(),
  cpt: z.custom<CptEstimate>((v) => typeof v === 'object' && v !== null && typeof (v as CptEstimate).total === 'number', 'a CPT estimate'),
  cptExplained: z.string(),
  /** The end of task_logs.txt (TASK_HISTORY_LOG_KB). */
  logsTail: z.string(),
});
export type TaskHistoryEntry = z.infer<typeof taskHistoryEntrySchema>;

export interface UsageAverages {
  cpu: number;
  memory: number;
  samples: number;
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
 * The node's finished tasks and the usage sums behind their averages.
 * - History (list of JSON TaskHistoryEntry, newest first, trimmed to TASK_HISTORY_SIZE):
 *   the gateway's result upload appends an entry when the pool took a result or the node
 *   gave one up; entries leave only by the trim. Read by /api and the dashboard.
 * - Usage sums (hash `usage:<id>`: samples, cpuSum, memSum, lastAt): the gateway's
 *   averaging adds each new sample of a running task; deleted with the history entry's
 *   append, else they expire (TASK_TIMEOUT + a day).
 */
export class TaskHistoryRepository {
  private readonly addSampleScript: (...args: (string | number)[]) => Promise<number>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.addSampleScript = defineScript<number>(redis, 'hivemindAddUsageSample', 1, ADD_SAMPLE);
  }

  /** Adds one usage sample (taken at `at`) to the task's sums, once; returns whether it was new. */
  async addUsageSample(taskId: string, at: number, cpuPercent: number, memoryPercent: number, ttlS: number): Promise<boolean> {
    return (await this.addSampleScript(this.keys.taskUsage(taskId), at, cpuPercent, memoryPercent, ttlS)) === 1;
  }

  /** Average CPU and memory use of a task over its samples (zeros without any). */
  async averages(taskId: string): Promise<UsageAverages> {
    const [cpuSum, memSum, samples] = await this.redis.hmget(this.keys.taskUsage(taskId), 'cpuSum', 'memSum', 'samples');
    const n = Number(samples ?? 0);
    return n > 0 ? { cpu: Number(cpuSum) / n, memory: Number(memSum) / n, samples: n } : { cpu: 0, memory: 0, samples: 0 };
  }

  /** Adds a finished task, keeps the newest `keep` entries, and drops the task's usage sums. */
  async append(entry: TaskHistoryEntry, keep: number): Promise<void> {
    await this.redis
      .multi()
      .lpush(this.keys.history, JSON.stringify(taskHistoryEntrySchema.parse(entry)))
      .ltrim(this.keys.history, 0, Math.max(0, keep - 1))
      .del(this.keys.taskUsage(entry.taskId))
      .exec();
  }

  /** The newest `limit` entries, newest first (an unreadable one is left out). */
  async list(limit: number): Promise<TaskHistoryEntry[]> {
    if (limit <= 0) return [];
    const raw = await this.redis.lrange(this.keys.history, 0, limit - 1);
    return raw.map((r) => parseJson(taskHistoryEntrySchema, r)).filter((e): e is TaskHistoryEntry => e !== null);
  }
}
