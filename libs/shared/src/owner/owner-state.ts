import type { RunningTask } from '../state/running-tasks';

/**
 * What the node knows of its owner, as the monitor publishes it (OwnerStateRepository)
 * for the gateway (status, admission), the executors (freezing) and the dashboard.
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

/**
 * What the node's running tasks use of the whole machine, in percent: their CPU
 * samples (percent of one core) summed over `machineCores`. Samples older than
 * `maxAgeMs` are left out (their executor stopped reporting).
 */
export function tasksCpuPercent(running: Iterable<RunningTask>, machineCores: number, now: number, maxAgeMs = 15_000): number {
  let sum = 0;
  for (const t of running) {
    if (now - t.usageAt <= maxAgeMs && Number.isFinite(t.cpuPercent)) sum += Math.max(0, t.cpuPercent);
  }
  return Math.min(100, sum / Math.max(1, machineCores));
}
