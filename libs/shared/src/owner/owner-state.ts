import type { Redis } from 'ioredis';
import { RedisKeys, RunningTask } from '../queue/redis-keys';

/**
 * What the node knows of its owner, as the monitor publishes it at
 * `<prefix>:owner:state` (JSON) for the gateway (status, admission) and the dashboard.
 */
export interface OwnerState {
  /** The owner's own load stayed above OWNER_BUSY_CPU_PERCENT: the node takes no new tasks. */
  busy: boolean;
  /** The owner's CPU use at the last sample: the host's minus the tasks', in percent of the machine. */
  ownerCpuPercent: number;
  /** When the owner became busy (ms since epoch), null while idle. */
  since: number | null;
  reason: string;
  /** Tasks paused (docker pause) while the owner is busy. */
  frozenTasks: string[];
  /** Whether WORK_SCHEDULE has the node open now (true without a schedule). */
  scheduleOpen: boolean;
}

export async function writeOwnerState(redis: Redis, keys: RedisKeys, state: OwnerState, ttlMs: number): Promise<void> {
  await redis.set(keys.ownerState, JSON.stringify(state), 'PX', Math.max(1000, Math.round(ttlMs)));
}

/** The published state, or null when none is (no monitor running, or it stopped). */
export async function readOwnerState(redis: Redis, keys: RedisKeys): Promise<OwnerState | null> {
  const raw = await redis.get(keys.ownerState);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as OwnerState;
  } catch {
    return null;
  }
}

/**
 * What the node's running tasks use of the whole machine, in percent: their CPU
 * samples (percent of one core) summed over `machineCores`. Samples older than
 * `maxAgeMs` are left out (their executor stopped reporting).
 */
export function tasksCpuPercent(running: Record<string, string>, machineCores: number, now: number, maxAgeMs = 15_000): number {
  let sum = 0;
  for (const raw of Object.values(running)) {
    try {
      const t = JSON.parse(raw) as RunningTask;
      if (now - t.usageAt <= maxAgeMs && Number.isFinite(t.cpuPercent)) sum += Math.max(0, t.cpuPercent);
    } catch {
      // A malformed entry counts as nothing.
    }
  }
  return Math.min(100, sum / Math.max(1, machineCores));
}
