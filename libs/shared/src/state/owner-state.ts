import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { OwnerState } from '../owner/owner-state';
import { RedisKeys } from './redis-keys';
import { parseJson } from './scripts';

export const ownerStateSchema: z.ZodType<OwnerState> = z.object({
  busy: z.boolean(),
  ownerCpuPercent: z.number(),
  since: z.number().nullable(),
  reason: z.string(),
  frozenTasks: z.array(z.string()),
  scheduleOpen: z.boolean(),
});

/**
 * The owner's side of the node:
 * - the published OwnerState (JSON, expiring): created and rewritten every second by the
 *   monitor's owner watch; it expires when the monitor stops writing it. Read by the
 *   gateway (status, admission, /api) and the executors (whether to freeze tasks).
 * - the frozen tasks (hash taskId -> ms since epoch): an executor creates an entry when
 *   it pauses a task for the owner and deletes it when it resumes or ends the task. Read
 *   by the monitor, which lists them in the published state.
 */
export class OwnerStateRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async publish(state: OwnerState, ttlMs: number): Promise<void> {
    await this.redis.set(this.keys.ownerState, JSON.stringify(ownerStateSchema.parse(state)), 'PX', Math.max(1000, Math.round(ttlMs)));
  }

  /** The published state, or null when none is (no monitor running, it stopped, or it is unreadable). */
  async read(): Promise<OwnerState | null> {
    return parseJson(ownerStateSchema, await this.redis.get(this.keys.ownerState));
  }

  async frozen(taskId: string, since: number): Promise<void> {
    await this.redis.hset(this.keys.ownerFrozen, taskId, String(since));
  }

  async thawed(taskId: string): Promise<void> {
    await this.redis.hdel(this.keys.ownerFrozen, taskId);
  }

  /** Ids of the tasks paused for the owner, sorted. */
  async frozenTaskIds(): Promise<string[]> {
    return (await this.redis.hkeys(this.keys.ownerFrozen)).sort();
  }
}
