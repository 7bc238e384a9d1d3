import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { Inject, Injectable } from '@nestjs/common';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { ControlChannel } from '@hivemind/shared/state/control-channel';
import { RunningTask, RunningTasks } from '@hivemind/shared/state/running-tasks';
import { entryCommand } from '@hivemind/shared/task-format/entry-point';
import { Outcome, outcomes } from '@hivemind/shared/task-format/outcome';
import { OwnerFreezeService } from '../owner-freeze.service';
import { RuntimeService } from '../runtime/runtime.service';
import { TaskEvents } from '../task-events';
import { RunExit, RunningTaskHandle } from '../runtime/task-runtime.port';
import { onCancel } from './cancellation';
import { PACKAGES_DIR } from './install-requirements.step';
import { quotaOf, TaskContext } from './task-context';
import { taskImage } from './task-image';
import { startWatchdogs } from './watchdogs';

const exists = (p: string) => fs.stat(p).then(() => true, () => false);

/** The reason a stop from the pool gives. */
export const OWNER_STOP = 'stopped at the request of the task owner';

/** How a run that nobody cancelled ended, from its exit. */
export function outcomeOfExit(exit: RunExit, memoryBytes: number): Outcome {
  if (exit.error) return outcomes.runtimeFailed(exit.error);
  if (exit.oomKilled) return outcomes.outOfMemory(memoryBytes);
  if (exit.exitCode === 0) return outcomes.succeeded();
  return outcomes.exitedWithError(exit.exitCode);
}

/**
 * The task itself: its entry point in the runtime (no network, the workspace as its
 * only writable folder, files no larger than its workspace quota), with the watchdogs
 * beside it. Any cancellation (stop, timeout, quota, drain) thaws it if the owner had
 * it paused and stops it with STOP_GRACE_PERIOD.
 */
@Injectable()
export class RunTaskStep {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly runtimes: RuntimeService,
    private readonly freeze: OwnerFreezeService,
    private readonly running: RunningTasks,
    private readonly control: ControlChannel,
    private readonly events: TaskEvents,
  ) {}

  /** Runs the task (or follows the one adopted from a crashed executor) to its end. */
  async run(ctx: TaskContext, adopted: RunningTaskHandle | null = null): Promise<{ exit: RunExit; outcome: Outcome }> {
    const { job, live, runtime, sink } = ctx;
    const c = this.config;
    const inside = runtime.workspacePath(ctx.paths.workspace);
    const image = taskImage(job, c, runtime);
    const handle =
      adopted ??
      (await runtime.start(
        {
          taskId: job.taskId,
          workspace: ctx.paths.workspace,
          command: entryCommand(job.entry),
          env: {
            TASK_ID: job.taskId,
            RESULT_DIR: path.posix.join(inside, 'result'),
            HOME: '/tmp',
            PYTHONUNBUFFERED: '1',
            LANG: 'C.UTF-8',
            // What the install step put there (requirements.txt) is found by imports.
            ...((await exists(path.join(ctx.paths.workspace, PACKAGES_DIR))) ? { PYTHONPATH: path.posix.join(inside, PACKAGES_DIR) } : {}),
          },
          limits: job.limits,
          entryKind: job.entry.kind,
          // Checked by the prepare step; an adopted task runs in the image it started in.
          ...('image' in image && image.image ? { image: image.image } : {}),
          gpus: live.gpus,
          network: false,
          maxFileBytes: c.workspaceQuotaBytes,
        },
        (chunk) => sink.push(chunk),
      ));
    live.handle = handle;
    if (await this.control.stopRequested(job.taskId)) live.cancel(outcomes.stopped(OWNER_STOP));
    const stopOnCancel = onCancel(live.signal, () => {
      sink.note(`${(live.cancelledWith?.reason ?? 'cancelled').replace(/ and was stopped$/, '')}; stopping`);
      void this.freeze.thaw(job.taskId).finally(() => handle.stop(c.STOP_GRACE_PERIOD));
    });
    const running: RunningTask = { executorId: ctx.executorId, startedAt: handle.startedAt, cpuPercent: 0, memoryPercent: 0, memoryBytes: 0, usageAt: handle.startedAt };
    await this.running.start(job.taskId, running);
    this.events.started(job.taskId, ctx.executorId, handle.startedAt);
    await this.freeze.track(job.taskId, runtime, adopted !== null);
    const quota = quotaOf(this.runtimes, c);
    const watchdogs = startWatchdogs(ctx, handle, running, { config: c, running: this.running, freeze: this.freeze, quota });
    try {
      const exit = await handle.done;
      const cancelled = live.cancelledWith;
      if (cancelled) return { exit, outcome: cancelled };
      // A task that failed on a full volume, or went past a watched quota and ended,
      // before the watchdog saw it: say why.
      if (quota.mode === 'loop' && exit.exitCode !== 0 && (await quota.full(ctx.paths.workspace, c.workspaceQuotaBytes))) {
        return { exit, outcome: outcomes.quotaExceeded(c.workspaceQuotaBytes, 'writes failed') };
      }
      if (quota.mode === 'watch' && (await quota.full(ctx.paths.workspace, c.workspaceQuotaBytes).catch(() => false))) {
        return { exit, outcome: outcomes.quotaExceeded(c.workspaceQuotaBytes, 'found at its end') };
      }
      return { exit, outcome: outcomeOfExit(exit, job.limits.memoryBytes) };
    } finally {
      watchdogs.stop();
      stopOnCancel();
      live.handle = null;
      live.frozenMs = await this.freeze.untrack(job.taskId);
      live.ranMs = Math.max(0, Date.now() - handle.startedAt - live.frozenMs);
      await this.running.remove(job.taskId);
    }
  }
}
