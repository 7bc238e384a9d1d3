import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { TaskUsageAverage } from '@hivemind/shared/earnings/task-usage';
import { RunningTask, RunningTasks } from '@hivemind/shared/state/running-tasks';
import { outcomes } from '@hivemind/shared/task-format/outcome';
import { OwnerFreezeService } from '../owner-freeze.service';
import { RunningTaskHandle } from '../runtime/task-runtime.port';
import { WorkspaceQuota } from '../workspace/quota';
import { TaskContext } from './task-context';

export interface WatchdogDeps {
  config: WorkerConfig;
  running: RunningTasks;
  freeze: OwnerFreezeService;
  quota: WorkspaceQuota;
}

/**
 * What watches a running task, beside it: the deadline (TASK_TIMEOUT, counted from the
 * task's own start, time paused for the owner left out), the usage sampler (the
 * running-tasks hash and the CPT estimate's averages) and the workspace quota (loop:
 * the volume's free space every 0.5 s; watch: the quota's own measure). A watchdog that
 * fires cancels the task with its outcome; the run step then stops the container.
 */
export function startWatchdogs(ctx: TaskContext, handle: RunningTaskHandle, running: RunningTask, deps: WatchdogDeps): { stop(): void } {
  const { config, freeze, quota } = deps;
  const taskId = ctx.job.taskId;
  let finished = false;

  const usage = (ctx.live.usage = new TaskUsageAverage(ctx.job.limits.nanoCpus / 1e9));
  let primed = false;
  let sampling = false;
  const usageTimer = setInterval(() => {
    if (sampling) return;
    sampling = true;
    handle
      .usage()
      // A sample that arrives after the end must not bring the task back into `running`.
      .then((u) => {
        if (!u || finished) return null;
        // The first CPU reading has nothing to compare with and says 0: not a measurement.
        if (primed && !freeze.isFrozen(taskId)) usage.add(u.cpuPercent, u.memoryPercent);
        primed = true;
        return deps.running.sample(taskId, running, u);
      })
      .catch(() => undefined)
      .finally(() => (sampling = false));
  }, config.TASK_USAGE_INTERVAL * 1000);

  let checking = false;
  const quotaTimer =
    quota.mode === 'off'
      ? null
      : setInterval(() => {
          if (checking || finished) return;
          checking = true;
          quota
            .full(ctx.paths.workspace, config.workspaceQuotaBytes)
            .then((full) => {
              if (full && !finished) ctx.live.cancel(outcomes.quotaExceeded(config.workspaceQuotaBytes, 'stopped'));
            })
            .catch(() => undefined)
            .finally(() => (checking = false));
        }, quota.pollMs);

  // For an adopted task the start was before this executor. When the timer fires early
  // because the task was paused meanwhile, it is set again for what is left.
  const limitMs = config.TASK_TIMEOUT * 1000;
  const left = () => limitMs - (Date.now() - handle.startedAt - freeze.frozenMs(taskId));
  const expire = () => {
    if (finished) return;
    if (left() > 0) {
      deadline = setTimeout(expire, left());
      return;
    }
    ctx.live.cancel(outcomes.timedOut(config.TASK_TIMEOUT));
  };
  let deadline = setTimeout(expire, Math.max(0, left()));

  return {
    stop() {
      finished = true;
      clearInterval(usageTimer);
      if (quotaTimer) clearInterval(quotaTimer);
      clearTimeout(deadline);
    },
  };
}
