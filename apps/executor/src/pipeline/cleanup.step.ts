import { promises as fs } from 'node:fs';
import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { TASK_STORE, TaskStore } from '@hivemind/shared/state/task-store';
import { errorMessage } from '@hivemind/shared/util/errors';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import { RuntimeService } from '../runtime/runtime.service';
import { removeTree } from '../workspace/remove-tree';
import { quotaOf } from './task-context';

const exists = (p: string) => fs.stat(p).then(() => true, () => false);

/**
 * Removes a task's container and files once its result is queued (or it needs no
 * result); until then, an executor that takes over after a crash can still use them.
 * A failed task's workspace is kept for FAILED_WORKSPACE_RETENTION first. Best effort:
 * a leftover is logged (the reconciler and the disk guard try again), never fatal.
 */
@Injectable()
export class CleanupStep {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(TASK_STORE) private readonly store: TaskStore,
    private readonly runtimes: RuntimeService,
    private readonly workDir: WorkDir,
  ) {}

  async run(taskId: string, keepWorkspace = false): Promise<void> {
    await this.runtimes.runtime?.remove(taskId);
    if (keepWorkspace && this.config.FAILED_WORKSPACE_RETENTION > 0) await this.keep(taskId);
    const files = this.workDir.taskFiles(taskId);
    await quotaOf(this.runtimes, this.config)
      .release(taskId, files.workspace)
      .catch((err: unknown) => this.logger.warn({ taskId, err: errorMessage(err) }, 'task volume not released'));
    const results = await Promise.allSettled([
      removeTree(files.workspace),
      fs.rm(files.log, { force: true }),
      fs.rm(files.taskZip, { force: true }),
      this.store.removeTaskZip(taskId),
    ]);
    for (const r of results) {
      if (r.status === 'rejected') this.logger.warn({ taskId, err: errorMessage(r.reason) }, 'task files not fully removed');
    }
  }

  /**
   * Moves a failed task's workspace to WORK_DIR/kept (a loop volume's image file as
   * `<task>.img`, the task's files in its `ws-<task>/` folder; else the folder), where
   * the disk guard deletes it after FAILED_WORKSPACE_RETENTION.
   */
  private async keep(taskId: string): Promise<void> {
    const workspace = this.workDir.workspace(taskId);
    try {
      await fs.mkdir(this.workDir.folder('kept'), { recursive: true, mode: 0o700 });
      if (!(await exists(workspace))) return;
      let target = this.workDir.kept(taskId, true);
      if (!(await quotaOf(this.runtimes, this.config).keepVolume(taskId, workspace, target))) {
        target = this.workDir.kept(taskId);
        await removeTree(target);
        await fs.rename(workspace, target);
      }
      const now = new Date();
      await fs.utimes(target, now, now);
      this.logger.info({ taskId, keepS: this.config.FAILED_WORKSPACE_RETENTION }, 'failed task workspace kept for debugging');
    } catch (err) {
      this.logger.warn({ taskId, err: errorMessage(err) }, 'could not keep the failed task workspace');
    }
  }
}
