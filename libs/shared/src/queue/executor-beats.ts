import type { Redis } from 'ioredis';
import { RedisKeys } from './redis-keys';

/**
 * How old an executor's beat (every 5 s) must be before its entry is pruned from the
 * executors hash: far past the 20-30 s after which readers already treat it as stale.
 */
export const EXECUTOR_PRUNE_MS = 10 * 60_000;

/**
 * Deletes the entries whose seenAt is before ARGV[1], in one script, so a beat written
 * meanwhile is never deleted with the one it replaced. An entry that is not
 * JSON with a numeric seenAt is deleted too. KEYS[1] executors hash. Returns the ids deleted.
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
 * Removes executors that stopped beating long ago (a crashed executor never deletes its
 * own entry; one that stops cleanly does). Run by every executor's reconciler.
 */
export async function pruneStaleExecutors(redis: Redis, keys: RedisKeys, now = Date.now(), maxAgeMs = EXECUTOR_PRUNE_MS): Promise<string[]> {
  return (await redis.eval(PRUNE, 1, keys.executors, now - maxAgeMs)) as string[];
}
