import { promises as fs } from 'node:fs';
import { Inject, Injectable } from '@nestjs/common';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { describeWhen, scheduleStatus } from '@hivemind/shared/owner/work-schedule';
import { containerLimits, reservationFor } from '@hivemind/shared/resources/limits';
import { NodeSettingsStore } from '@hivemind/shared/settings/node-settings';
import { ControlChannel } from '@hivemind/shared/state/control-channel';
import { ExecutorBeat, Executors } from '@hivemind/shared/state/executors';
import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { OwnerStateRepository } from '@hivemind/shared/state/owner-state';

export type DockerStatus = 'available' | 'unavailable' | 'disabled';

/** An executor that has not beaten for this long is taken as gone. */
const EXECUTOR_STALE_MS = 20_000;

/** What the node tells the pool about itself: its status string and Docker state. */
@Injectable()
export class NodeStatusService {
  /** Set on shutdown: the pool stops sending work and ExecuteTask says no. */
  draining = false;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly settings: NodeSettingsStore,
    private readonly ledger: ResourceLedger,
    private readonly beats: Executors,
    private readonly owner: OwnerStateRepository,
    private readonly control: ControlChannel,
  ) {}

  /**
   * `Idle` while another default-sized task fits, else `Running N tasks`; with no
   * executor alive, `Unavailable`; while shutting down, `Draining` (the pool only
   * dispatches to `Idle`).
   */
  async status(): Promise<{ status: string; held: number }> {
    const totals = await this.ledger.totals();
    if (this.draining) return { status: 'Draining', held: totals.tasks };
    if (await this.paused()) return { status: 'Paused', held: totals.tasks };
    if (await this.lowDisk()) return { status: 'Low disk', held: totals.tasks };
    const owner = await this.ownerFirst();
    if (owner) return { status: owner.status, held: totals.tasks };
    if (!(await this.hasExecutor())) return { status: 'Unavailable', held: totals.tasks };
    const node = await this.settings.capacity();
    const defaults = { cpuScore: 0, gpuScore: 0, memoryGb: 0, gpuMemoryGb: 0 };
    const smallest = reservationFor(defaults, containerLimits(defaults, node, this.limitDefaults()), node);
    const room = this.ledger.hasRoom(totals, node, smallest);
    return { status: room ? 'Idle' : `Running ${totals.tasks} tasks`, held: totals.tasks };
  }

  /**
   * Whether the owner comes first now: busy with their own work (the monitor's owner
   * state), or outside the working hours (WORK_SCHEDULE). Null when the node may take work.
   */
  async ownerFirst(now = new Date()): Promise<{ status: string; message: string } | null> {
    const owner = await this.owner.read();
    if (owner?.busy) {
      const idle = this.config.OWNER_IDLE_AFTER;
      return {
        status: 'Busy (owner)',
        message: `the machine's owner is using it (${owner.reason}); the node takes no new tasks until the owner has been idle for ${idle} s`,
      };
    }
    const hours = scheduleStatus(this.config.workSchedule, now);
    if (!hours.open) {
      return {
        status: 'Closed (working hours)',
        message: `the node takes tasks only during its working hours (WORK_SCHEDULE "${this.config.workSchedule!.text}"); it opens ${describeWhen(hours.opensAt!)} (${hours.opensAt!.toISOString()})`,
      };
    }
    return null;
  }

  /**
   * Why the node is too low on disk to take tasks (free space under WORK_DIR below
   * MIN_FREE_DISK_MB), or null. The executor's disk guard collects garbage meanwhile.
   */
  async lowDisk(): Promise<string | null> {
    const st = await fs.statfs(this.config.workDir).catch(() => null);
    if (!st) return null;
    const free = (st.bavail * st.bsize) / 1048576;
    if (free >= this.config.MIN_FREE_DISK_MB) return null;
    return `the node is low on disk: ${Math.round(free)} MB free under WORK_DIR, below MIN_FREE_DISK_MB (${this.config.MIN_FREE_DISK_MB} MB)`;
  }

  /** The owner's pause: like a drain, but the node stays up and resumes when the flag goes. */
  async paused(): Promise<boolean> {
    return this.control.isPaused();
  }

  limitDefaults() {
    const c = this.config;
    return { defaultCpus: c.TASK_DEFAULT_CPUS, minCpus: c.TASK_MIN_CPUS, defaultMemoryMb: c.TASK_DEFAULT_MEMORY_MB, minMemoryMb: c.TASK_MIN_MEMORY_MB };
  }

  async executors(): Promise<ExecutorBeat[]> {
    const now = Date.now();
    const all = await this.beats.all();
    return all.filter((b) => now - b.seenAt < EXECUTOR_STALE_MS);
  }

  /** disabled by config; available when a live executor runs Docker; else unavailable. */
  async dockerStatus(): Promise<DockerStatus> {
    if (!this.config.DOCKER_ENABLED) return 'disabled';
    const live = await this.executors();
    return live.some((b) => b.docker === 'available') ? 'available' : 'unavailable';
  }

  /** Whether any executor is alive to run what we accept. */
  async hasExecutor(): Promise<boolean> {
    return (await this.executors()).some((b) => b.runtime !== 'none');
  }
}
