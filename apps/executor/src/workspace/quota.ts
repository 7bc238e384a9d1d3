import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '@hivemind/shared/util/errors';
import { isMountPoint, treeBytes } from './remove-tree';
import { formatImage, SpareVolumes } from './spare-volumes';
import { QuotaUsage, TreeWatch, WatchedUsage } from './tree-watch';
import { volumeTools } from './volume-tools';

export { isMountPoint, treeBytes, type QuotaUsage, type WatchedUsage };

export type QuotaMode = 'loop' | 'watch' | 'off';

/**
 * Bounds what a task can write into its workspace.
 *
 * - `loop`: the workspace is its own ext4 filesystem, a sparse image file of the quota's
 *   size loop-mounted (nosuid, nodev) on the workspace folder. The kernel enforces the
 *   size: writes past it fail with ENOSPC. Needs root, `mkfs.ext4` and loop devices.
 * - `watch`: the workspace is a plain folder, measured often (see TreeWatch for what that
 *   can and cannot promise); a task past its quota is stopped. No hard bound on the disk.
 * - `off`: no bound beyond the disk itself.
 */
export class WorkspaceQuota {
  /** Image size that gives a quota its exact usable size, found once per quota. */
  private readonly imageSizes = new Map<number, number>();
  /** Volumes formatted ahead of time (loop), so a task's start is a rename and a mount. */
  private readonly spares: SpareVolumes;
  /** loop: volumes mounted for tasks now (how many spares to keep ready). */
  private readonly mounted = new Set<string>();
  /** watch: what is known of each workspace. */
  private readonly watch: TreeWatch;

  constructor(
    readonly mode: QuotaMode,
    private readonly volumesDir: string,
    private readonly logger: Logger,
    /** Most spare volumes kept ready: the tasks this executor runs at once. */
    spares = 1,
  ) {
    this.watch = new TreeWatch(logger);
    this.spares = new SpareVolumes(`${volumesDir}-spare`, spares, logger);
  }

  /**
   * Picks the mode for `auto`: loop when this process is root and can make and mount an
   * ext4 image (tried once, on a 16 MB image), else watch.
   */
  static async detect(requested: 'auto' | QuotaMode, volumesDir: string, logger: Logger, spares = 1): Promise<WorkspaceQuota> {
    if (requested !== 'auto') {
      const chosen = new WorkspaceQuota(requested, volumesDir, logger, spares);
      // Spares a crashed executor left behind (older than an hour) go at start.
      if (requested === 'loop') await chosen.dropSpares();
      return chosen;
    }
    if (process.getuid?.() !== 0) return new WorkspaceQuota('watch', volumesDir, logger);
    const probe = new WorkspaceQuota('loop', volumesDir, logger, spares);
    const dir = path.join(volumesDir, `probe-${process.pid}`);
    try {
      await probe.create('probe', dir, 16 * 1024 * 1024);
      await probe.release('probe', dir);
      await probe.dropSpares();
      return probe;
    } catch (err) {
      await probe.release('probe', dir).catch(() => undefined);
      logger.warn({ err: errorMessage(err) }, 'loop-mounted workspaces are not possible here; measuring workspace sizes instead (WORKSPACE_QUOTA=watch)');
      return new WorkspaceQuota('watch', volumesDir, logger);
    }
  }

  imageFile(taskId: string): string {
    return path.join(this.volumesDir, `${taskId}.img`);
  }

  /** Makes an empty workspace folder bounded to `limitBytes`. */
  async create(taskId: string, workspace: string, limitBytes: number): Promise<void> {
    await fs.mkdir(workspace, { recursive: true });
    this.watch.forget(workspace);
    if (this.mode !== 'loop') return;
    await fs.mkdir(this.volumesDir, { recursive: true, mode: 0o700 });
    if (!(await this.fromSpare(taskId, workspace, limitBytes))) await this.format(taskId, workspace, limitBytes);
    // Ready the next ones while this task runs (not for the start-up probe): one per volume in use.
    if (path.basename(workspace).startsWith('probe-')) return;
    this.mounted.add(workspace);
    const size = this.imageSizes.get(limitBytes);
    if (size) this.spares.fill(limitBytes, size, this.mounted.size);
  }

  /** Mounts a spare volume as this task's, when one of the right size is ready. */
  private async fromSpare(taskId: string, workspace: string, limitBytes: number): Promise<boolean> {
    const file = await this.spares.take(limitBytes);
    if (!file) return false;
    const image = this.imageFile(taskId);
    try {
      await this.unmount(workspace);
      await fs.rename(file, image);
      await volumeTools.run('mount', ['-o', 'loop,nosuid,nodev', image, workspace], 30_000);
      await fs.rm(path.join(workspace, 'lost+found'), { recursive: true, force: true });
      return true;
    } catch (err) {
      this.logger.warn({ taskId, err: errorMessage(err) }, 'the spare workspace volume could not be used; formatting one');
      await this.unmount(workspace).catch(() => undefined);
      await fs.rm(image, { force: true });
      await fs.rm(file, { force: true });
      return false;
    }
  }

  /** Deletes spare volumes left by executors that stopped (older than an hour), and this one's. */
  dropSpares(all = false): Promise<void> {
    return this.spares.drop(all);
  }

  /** Formats and mounts a new volume for the task, sized so it offers exactly `limitBytes`. */
  private async format(taskId: string, workspace: string, limitBytes: number): Promise<void> {
    const image = this.imageFile(taskId);
    await this.unmount(workspace);
    await fs.rm(image, { force: true });
    // ext4 keeps some of the image for its own tables and journal: make the image that
    // much bigger, measured on a first try and corrected once, so the task gets its quota.
    const round = (n: number) => Math.ceil(n / 4096) * 4096;
    // The corrected size for a quota is remembered: later tasks with the same quota (most
    // use the default) need one mkfs, not two.
    const known = this.imageSizes.get(limitBytes);
    let size = known ?? round(limitBytes * 1.03 + 6 * 1024 * 1024);
    try {
      for (let pass = known ? 1 : 0; ; pass++) {
        await fs.rm(image, { force: true });
        await formatImage(image, size);
        await volumeTools.run('mount', ['-o', 'loop,nosuid,nodev', image, workspace], 30_000);
        await fs.rm(path.join(workspace, 'lost+found'), { recursive: true, force: true });
        const st = await fs.statfs(workspace);
        const avail = st.bavail * st.bsize;
        if (pass > 0 || Math.abs(avail - limitBytes) <= Math.max(1024 * 1024, limitBytes * 0.005)) {
          this.imageSizes.set(limitBytes, size);
          break;
        }
        await this.unmount(workspace);
        size = round(size + (limitBytes - avail));
      }
    } catch (err) {
      await this.unmount(workspace).catch(() => undefined);
      await fs.rm(image, { force: true });
      throw new Error(`could not make the task's ${Math.round(limitBytes / 1048576)} MB workspace volume: ${(err as { stderr?: string }).stderr?.trim() || errorMessage(err)}`);
    }
  }

  /** How often the executor should ask `full` while a task runs, in ms. */
  get pollMs(): number {
    return this.mode === 'loop' ? 500 : 250;
  }

  /** What the workspace holds now (watch: measured now); null when it cannot be measured. */
  async usage(workspace: string, limitBytes: number): Promise<QuotaUsage | null> {
    if (this.mode === 'off') return null;
    if (this.mode === 'loop') {
      const st = await fs.statfs(workspace).catch(() => null);
      if (!st) return null;
      const total = st.blocks * st.bsize;
      return { usedBytes: total - st.bavail * st.bsize, limitBytes: total };
    }
    return this.watch.usage(workspace, limitBytes);
  }

  /** watch: what was last known of a workspace (its last measure), without measuring; null when not watched. */
  lastUsage(workspace: string): WatchedUsage | null {
    return this.watch.last(workspace);
  }

  /**
   * Whether a task has used up its quota (loop: less than 1 MB or no inode left; watch:
   * its last measure is past the quota, measuring first when one is due, see the class).
   */
  async full(workspace: string, limitBytes: number): Promise<boolean> {
    if (this.mode === 'off') return false;
    if (this.mode === 'loop') {
      const st = await fs.statfs(workspace).catch(() => null);
      return Boolean(st && (st.bavail * st.bsize < 1024 * 1024 || st.ffree === 0));
    }
    return this.watch.full(workspace, limitBytes);
  }

  /** Unmounts a task's volume (if any) and deletes its image; the folder's contents stay. */
  async release(taskId: string, workspace: string): Promise<void> {
    this.watch.forget(workspace);
    this.mounted.delete(workspace);
    await this.unmount(workspace);
    await fs.rm(this.imageFile(taskId), { force: true });
    if (path.basename(workspace).startsWith('probe-')) await fs.rm(workspace, { recursive: true, force: true });
  }

  /** Unmounts whatever is mounted on `dir` (lazily if it is busy). */
  async unmount(dir: string): Promise<void> {
    if (!(await isMountPoint(dir))) return;
    try {
      await volumeTools.run('umount', [dir], 30_000);
    } catch {
      await volumeTools.run('umount', ['-l', dir], 30_000).catch((err: unknown) => this.logger.warn({ dir, err: errorMessage(err) }, 'could not unmount a task workspace'));
    }
  }
}
