import type { Redis } from 'ioredis';
import { z } from 'zod';
import { RedisKeys } from './redis-keys';
import { parseHash, parseJson } from './scripts';

export const runningTaskSchema = z.object({
  executorId: z.string(),
  startedAt: z.number(),
  /** Percent of one core at the last sample. */
  cpuPercent: z.number(),
  memoryPercent: z.number(),
  memoryBytes: z.number(),
  /** When the last sample was taken (startedAt until the first). */
  usageAt: z.number(),
});
export type RunningTask = z.infer<typeof runningTaskSchema>;
export type TaskUsageSample = Pick<RunningTask, 'cpuPercent' | 'memoryPercent' | 'memoryBytes'>;

/**
 * Tasks whose container runs now (hash taskId -> JSON RunningTask).
 * Created by the executor's run step when the container starts; updated by its usage
 * sampler (watchdogs) about every second; deleted by the run step when the container
 * ends, or by the reconciler for an entry whose executor is gone.
 * Read by the gateway (usage relay, status, averages, /api, /metrics) and the monitor
 * (the owner's share of the CPU).
 */
export class RunningTasks {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async start(taskId: string, task: RunningTask): Promise<void> {
    await this.redis.hset(this.keys.running, taskId, JSON.stringify(runningTaskSchema.parse(task)));
  }

  /** Stores a new usage sample on the task's entry (stamped now). */
  async sample(taskId: string, entry: RunningTask, usage: TaskUsageSample, now = Date.now()): Promise<void> {
    await this.redis.hset(this.keys.running, taskId, JSON.stringify({ ...entry, ...usage, usageAt: now }));
  }

  async get(taskId: string): Promise<RunningTask | null> {
    return parseJson(runningTaskSchema, await this.redis.hget(this.keys.running, taskId));
  }

  /** Every readable entry by task id (a malformed one is left out). */
  async all(): Promise<Map<string, RunningTask>> {
    return parseHash(runningTaskSchema, await this.redis.hgetall(this.keys.running));
  }

  /** Ids of every entry, readable or not. */
  async taskIds(): Promise<string[]> {
    return this.redis.hkeys(this.keys.running);
  }

  count(): Promise<number> {
    return this.redis.hlen(this.keys.running);
  }

  async remove(taskId: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.running, taskId)) > 0;
  }
}
