import type { Redis } from 'ioredis';
import { z } from 'zod';
import { RedisKeys } from './redis-keys';
import { parseJson } from './scripts';

/** A result the pool refused, kept and retried slowly without holding the task's slot. */
export const refusedResultSchema = z.object({
  taskId: z.string(),
  /** When the pool first refused it (ms since epoch). */
  refusedAt: z.number(),
  /** Retried until then (refusedAt + RESULT_REFUSED_RETRY); a refusal after it gives the result up. */
  until: z.number(),
  /** Refusals so far. */
  refusals: z.number().int().min(1),
  /** The pool's last answer. */
  message: z.string(),
  /** When the next try is due. */
  nextAt: z.number(),
});
export type RefusedResult = z.infer<typeof refusedResultSchema>;

/** The first pause after a refusal, and the longest; doubled after each refusal in between. */
export const REFUSED_RETRY_FIRST_MS = 60_000;
export const REFUSED_RETRY_MAX_MS = 30 * 60_000;

/** Milliseconds until the next try after the `refusals`-th refusal: slow, exponential, never past `until`. */
export function refusedRetryDelayMs(refusals: number, now: number, until: number): number {
  const pace = Math.min(REFUSED_RETRY_MAX_MS, REFUSED_RETRY_FIRST_MS * 2 ** Math.max(0, refusals - 1));
  return Math.max(0, Math.min(pace, until - now));
}

/**
 * The results the pool refused and the node still retries (hash taskId -> JSON RefusedResult).
 * The gateway's result upload creates an entry on a refusal (before it frees the task's
 * slot), updates it on each further refusal and deletes it when the pool takes the result
 * or the node gives it up. The executor's reconciler reads it: it keeps the result file
 * of a task listed here although the task no longer holds a slot.
 */
export class RefusedResults {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async get(taskId: string): Promise<RefusedResult | null> {
    const raw = await this.redis.hget(this.keys.refusedResults, taskId);
    return parseJson(refusedResultSchema, raw);
  }

  async has(taskId: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.refusedResults, taskId)) === 1;
  }

  async put(entry: RefusedResult): Promise<void> {
    await this.redis.hset(this.keys.refusedResults, entry.taskId, JSON.stringify(refusedResultSchema.parse(entry)));
  }

  async remove(taskId: string): Promise<void> {
    await this.redis.hdel(this.keys.refusedResults, taskId);
  }

  /** Every entry, soonest deadline first (an unreadable one is skipped). */
  async list(): Promise<RefusedResult[]> {
    const out: RefusedResult[] = [];
    for (const raw of Object.values(await this.redis.hgetall(this.keys.refusedResults))) {
      const r = parseJson(refusedResultSchema, raw);
      if (r) out.push(r);
    }
    return out.sort((a, b) => a.until - b.until);
  }

  async taskIds(): Promise<Set<string>> {
    return new Set(await this.redis.hkeys(this.keys.refusedResults));
  }

  count(): Promise<number> {
    return this.redis.hlen(this.keys.refusedResults);
  }
}
