import type { Redis } from 'ioredis';
import { z } from 'zod';
import { RedisKeys } from './redis-keys';
import { defineScript, parseHash } from './scripts';

export const executorBeatSchema = z.object({
  executorId: z.string(),
  runtime: z.enum(['docker', 'process', 'none']),
  docker: z.enum(['available', 'unavailable', 'disabled']),
  running: z.number(),
  concurrency: z.number(),
  seenAt: z.number(),
  /** Why the executor cannot run tasks yet (e.g. a missing task image), while it cannot. */
  problem: z.string().nullable().optional(),
});
export type ExecutorBeat = z.infer<typeof executorBeatSchema>;

/**
 * How old an executor's beat (every 5 s) must be before its entry is pruned: far past
 * the 20-30 s after which readers already treat it as stale.
 */
export const EXECUTOR_PRUNE_MS = 10 * 60_000;

/**
 * Deletes the entries whose seenAt is before ARGV[1], in one script, so a beat written
 * meanwhile is never deleted with the one it replaced. An entry that is not JSON with a
 * numeric seenAt is deleted too. KEYS[1] executors hash. Returns the ids deleted.
 */
const PRUNE = `
local all = redis.call('HGETALL', KEYS[1])
local gone = {}
for i = 1, #all, 2 do
  local ok, beat = pcall(cjson.decode, all[i + 1])
  local seen = ok and type(beat) == 'table' and tonumber(beat.seenAt) or nil
  if seen == nil or seen < tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], all[i])
    table.insert(gone, all[i])
  end
end
return gone`;

/**
 * The node's executors and their last beat (hash executorId -> JSON ExecutorBeat).
 * Each executor creates and updates its own entry every 5 s and deletes it when it stops
 * cleanly; a crashed executor's entry is deleted by any executor's reconciler
 * (prune) once EXECUTOR_PRUNE_MS old. Read by the gateway (status, admission, /api) and
 * the reconcilers (whose running tasks are still alive).
 */
export class Executors {
  private readonly pruneScript: (...args: (string | number)[]) => Promise<string[]>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.pruneScript = defineScript<string[]>(redis, 'hivemindPruneExecutors', 1, PRUNE);
  }

  async beat(beat: ExecutorBeat): Promise<void> {
    await this.redis.hset(this.keys.executors, beat.executorId, JSON.stringify(executorBeatSchema.parse(beat)));
  }

  async remove(executorId: string): Promise<void> {
    await this.redis.hdel(this.keys.executors, executorId);
  }

  /** Every readable beat (a malformed entry is left out; prune deletes it). */
  async all(): Promise<ExecutorBeat[]> {
    return [...parseHash(executorBeatSchema, await this.redis.hgetall(this.keys.executors)).values()];
  }

  /** Deletes the entries of executors silent for maxAgeMs; returns their ids. */
  prune(now = Date.now(), maxAgeMs = EXECUTOR_PRUNE_MS): Promise<string[]> {
    return this.pruneScript(this.keys.executors, now - maxAgeMs);
  }
}
