import * as path from 'node:path';
import { checkTaskId } from '../task-format/task-id';

/** A task id that is not one the pool could have sent: never turned into a path. */
export class InvalidTaskIdError extends Error {
  constructor(readonly taskId: unknown, why: string) {
    super(`refusing task id ${JSON.stringify(String(taskId)).slice(0, 80)}: ${why}`);
    this.name = 'InvalidTaskIdError';
  }
}

/**
 * The one owner of WORK_DIR's layout. Every file of a task is derived here from its
 * id (checked first), so no path is ever stored in, or trusted from, Redis:
 *
 * ```
 * WORK_DIR/
 *   incoming/<task>.zip       the task's zip, as the gateway stored it
 *   workspaces/<task>/        the unpacked task, mounted into its container (loop: a link)
 *   logs/<task>.log           the task's bounded output log (task_logs.txt)
 *   results/<task>.zip        the result zip, until the pool took it
 *   kept/<task>[.img]         a failed task's workspace, kept for debugging
 *   volumes/<task>.img        a loop volume of one task's own (the start-up probe's)
 *   volumes-slots/            loop volumes an executor keeps mounted between tasks
 *                             (WORKSPACE_QUOTA=loop: a task's workspace links to a folder in one)
 *   volumes-spare/            loop volumes formatted ahead, for the next slot
 * ```
 */
export class WorkDir {
  constructor(readonly root: string) {}

  static readonly folders = ['incoming', 'workspaces', 'logs', 'results', 'kept', 'volumes'] as const;

  /** Throws InvalidTaskIdError unless `taskId` is a valid task id. */
  static check(taskId: unknown): string {
    const why = checkTaskId(taskId);
    if (why) throw new InvalidTaskIdError(taskId, why);
    return taskId as string;
  }

  folder(name: (typeof WorkDir.folders)[number]): string {
    return path.join(this.root, name);
  }

  /** The task's zip as the gateway stored it. */
  taskZip(taskId: string): string {
    return path.join(this.root, 'incoming', `${WorkDir.check(taskId)}.zip`);
  }

  /** The task's zip while the gateway still writes it (renamed to taskZip when complete). */
  taskZipPartial(taskId: string): string {
    return `${this.taskZip(taskId)}.partial`;
  }

  workspace(taskId: string): string {
    return path.join(this.root, 'workspaces', WorkDir.check(taskId));
  }

  log(taskId: string): string {
    return path.join(this.root, 'logs', `${WorkDir.check(taskId)}.log`);
  }

  result(taskId: string): string {
    return path.join(this.root, 'results', `${WorkDir.check(taskId)}.zip`);
  }

  /** A failed task's kept workspace: the folder, or its volume's image file. */
  kept(taskId: string, image = false): string {
    return path.join(this.root, 'kept', `${WorkDir.check(taskId)}${image ? '.img' : ''}`);
  }

  volumes(): string {
    return path.join(this.root, 'volumes');
  }

  /**
   * Which task a file found in one of the per-task folders belongs to (the reconciler's
   * leftovers), or null when the name is none of ours. A partial file
   * (`<task>.zip.<writer>.partial`) belongs to its task.
   */
  static ownerOf(folder: 'workspaces' | 'incoming' | 'logs' | 'results' | 'volumes', name: string): string | null {
    if (name.endsWith('.partial')) return name.slice(0, name.indexOf('.'));
    const ext = { workspaces: '', incoming: '.zip', logs: '.log', results: '.zip', volumes: '.img' }[folder];
    if (!name.endsWith(ext)) return null;
    return name.slice(0, name.length - ext.length) || null;
  }

  /** Every file and folder of a task (for clean-up), kept workspaces aside. */
  taskFiles(taskId: string): { workspace: string; log: string; result: string; taskZip: string } {
    return { workspace: this.workspace(taskId), log: this.log(taskId), result: this.result(taskId), taskZip: this.taskZip(taskId) };
  }
}
