import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { OwnerStateRepository } from '@hivemind/shared/state/owner-state';
import { errorMessage } from '@hivemind/shared/util/errors';
import { Ticker } from '@hivemind/shared/util/ticker';
import { TaskRuntime } from './runtime/task-runtime.port';

interface Tracked {
  /** The runtime the task runs in; only one that supportsPause is frozen (a process keeps running). */
  runtime: TaskRuntime;
  frozenSince: number | null;
  frozenMs: number;
  /** Being stopped: thawed for good, so the stop signal reaches it. */
  exempt: boolean;
  busy: Promise<void>;
}

/**
 * With OWNER_BUSY_PAUSE_TASKS, pauses this executor's running task containers
 * (`docker pause`: the cgroup freezer) while the owner is busy, and resumes them once
 * the owner state says idle. Keeps each task's paused time, which the runner leaves
 * out of the task's timeout, and lists paused tasks in Redis for the owner state.
 */
@Injectable()
export class OwnerFreezeService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly tasks = new Map<string, Tracked>();
  private readonly ticker: Ticker;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly owner: OwnerStateRepository,
  ) {
    this.ticker = new Ticker('owner-freeze', 1000, () => this.tick(), (_n, err) => this.logger.warn({ err: errorMessage(err) }, 'owner freeze check failed'));
  }

  onApplicationBootstrap(): void {
    if (this.config.OWNER_BUSY_PAUSE_TASKS) this.ticker.start();
  }

  onApplicationShutdown(): void {
    this.ticker.stop();
  }

  /**
   * A task's run started in `runtime` (`adopted`: taken over from an executor that
   * stopped, which may have left it paused; a run this executor started is not).
   */
  async track(taskId: string, runtime: TaskRuntime, adopted = true): Promise<void> {
    const t: Tracked = { runtime, frozenSince: null, frozenMs: 0, exempt: false, busy: Promise.resolve() };
    this.tasks.set(taskId, t);
    if (!runtime.supportsPause || !adopted) return;
    // An adopted container may have been paused by the executor that crashed.
    if (await runtime.isPaused(taskId).catch(() => false)) {
      t.frozenSince = Date.now();
      await this.owner.frozen(taskId, t.frozenSince).catch(() => undefined);
      // This executor does not pause tasks: resume it now rather than leave it frozen.
      if (!this.config.OWNER_BUSY_PAUSE_TASKS) await this.set(taskId, t, false);
    }
  }

  /** The task ended: its paused time is final. */
  async untrack(taskId: string): Promise<number> {
    const t = this.tasks.get(taskId);
    if (!t) return 0;
    await t.busy;
    const ms = this.frozenMs(taskId);
    this.tasks.delete(taskId);
    await this.owner.thawed(taskId).catch(() => undefined);
    return ms;
  }

  /** How long the task has been paused for the owner, in ms, counting a pause in progress. */
  frozenMs(taskId: string, now = Date.now()): number {
    const t = this.tasks.get(taskId);
    if (!t) return 0;
    return t.frozenMs + (t.frozenSince !== null ? now - t.frozenSince : 0);
  }

  isFrozen(taskId: string): boolean {
    return this.tasks.get(taskId)?.frozenSince != null;
  }

  /** Resumes a task for good, before it is stopped (a frozen task cannot act on SIGTERM). */
  async thaw(taskId: string): Promise<void> {
    const t = this.tasks.get(taskId);
    if (!t) return;
    t.exempt = true;
    await this.set(taskId, t, false);
  }

  private set(taskId: string, t: Tracked, freeze: boolean): Promise<void> {
    t.busy = t.busy.then(async () => {
      if (freeze === (t.frozenSince !== null)) return;
      try {
        // False: it could not be frozen (it ended meanwhile); thawing a gone task counts as done.
        if (!(await t.runtime.setPaused(taskId, freeze))) return;
        if (freeze) {
          t.frozenSince = Date.now();
          await this.owner.frozen(taskId, t.frozenSince);
          this.logger.info({ taskId }, 'task paused: the owner is busy');
        } else {
          t.frozenMs += Date.now() - (t.frozenSince ?? Date.now());
          t.frozenSince = null;
          await this.owner.thawed(taskId);
          this.logger.info({ taskId, pausedS: Math.round(t.frozenMs / 1000) }, 'task resumed');
        }
      } catch (err) {
        this.logger.warn({ taskId, err: errorMessage(err) }, freeze ? 'could not pause the task' : 'could not resume the task');
      }
    });
    return t.busy;
  }

  /** Freezes or thaws every tracked task that can be paused to match the owner state. */
  async tick(): Promise<void> {
    if (this.tasks.size === 0) return;
    const owner = await this.owner.read();
    const freeze = Boolean(owner?.busy);
    await Promise.all(
      [...this.tasks].filter(([, t]) => t.runtime.supportsPause).map(([id, t]) => this.set(id, t, freeze && !t.exempt)),
    );
  }
}
