import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '@hivemind/shared/util/errors';
import { isMountPoint, treeBytes } from './remove-tree';
import { SlotVolumes } from './slot-volumes';
import { formatImage, mountImage, SpareVolumes, trimImage } from './spare-volumes';
import { QuotaUsage, TreeWatch, WatchedUsage } from './tree-watch';
import { volumeTools } from './volume-tools';

export { isMountPoint, treeBytes, type QuotaUsage, type WatchedUsage };

export type QuotaMode = 'loop' | 'watch' | 'off';

/** The start-up probe's folder and image in the volumes folder: `probe-<random>` (and `.img`). */
export const PROBE = 'probe-';

/**
 * Bounds what a task can write into its workspace.
 *
 * - `loop`: the workspace is a fresh folder of its own ext4 filesystem, a sparse image
 *   file of the quota's size loop-mounted (nosuid, nodev, discard) and kept mounted
 *   between tasks (see SlotVolumes); the workspace path is a link to that folder. The
 *   kernel enforces the size: writes past it fail with ENOSPC. Needs root, `mkfs.ext4`
 *   and loop devices.
 * - `watch`: the workspace is a plain folder, measured often (see TreeWatch for what that
 *   can and cannot promise); a task past its quota is stopped. No hard bound on the disk.
 * - `off`: no bound beyond the disk itself.
 */
export class WorkspaceQuota {
  /** Image size that gives a quota its exact usable size, found once per quota. */
  private readonly imageSizes = new Map<number, number>();
  /** A volume formatted ahead of time (loop), so a new slot is a rename and a mount. */
  private readonly spares: SpareVolumes;
  /** loop: the volumes kept mounted between tasks. */
  private readonly slots: SlotVolumes;
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
    // WORK_DIR/volumes sits beside WORK_DIR/workspaces (see WorkDir).
    this.slots = new SlotVolumes(`${volumesDir}-slots`, path.join(path.dirname(volumesDir), 'workspaces'), logger);
  }

  /**
   * Picks the mode for `auto`: loop when this process is root and can make and mount an
   * ext4 image (tried once, on a 16 MB image), else watch.
   */
  static async detect(requested: 'auto' | QuotaMode, volumesDir: string, logger: Logger, spares = 1): Promise<WorkspaceQuota> {
    if (requested !== 'auto') {
      const chosen = new WorkspaceQuota(requested, volumesDir, logger, spares);
      // What a crashed executor left (its spare, its free slots) goes at start.
      if (requested === 'loop') await chosen.dropUnused();
      return chosen;
    }
    if (process.getuid?.() !== 0) return new WorkspaceQuota('watch', volumesDir, logger);
    const probe = new WorkspaceQuota('loop', volumesDir, logger, spares);
    // A name of its own: executors starting together (in containers, each pid 1) share volumesDir.
    const name = `${PROBE}${randomBytes(4).toString('hex')}`;
    const dir = path.join(volumesDir, name);
    try {
      await probe.create(name, dir, 16 * 1024 * 1024);
      await probe.release(name, dir);
      await probe.dropUnused();
      return probe;
    } catch (err) {
      await probe.release(name, dir).catch(() => undefined);
      logger.warn({ err: errorMessage(err) }, 'loop-mounted workspaces are not possible here; measuring workspace sizes instead (WORKSPACE_QUOTA=watch)');
      return new WorkspaceQuota('watch', volumesDir, logger);
    }
  }

  imageFile(taskId: string): string {
    return path.join(this.volumesDir, `${taskId}.img`);
  }

  /**
   * Makes an empty workspace bounded to `limitBytes` at `workspace`: a folder (loop: a
   * link to the task's folder in a slot volume).
   */
  async create(taskId: string, workspace: string, limitBytes: number): Promise<void> {
    this.watch.forget(workspace);
    const probe = this.isProbe(workspace);
    if (this.mode !== 'loop' || probe) await fs.mkdir(workspace, { recursive: true });
    if (this.mode !== 'loop') return;
    await fs.mkdir(this.volumesDir, { recursive: true, mode: 0o700 });
    // The start-up probe checks that a volume can be made and mounted: one of its own.
    if (probe) return this.mountNew(this.imageFile(taskId), workspace, limitBytes);
    // An empty folder left there gives way to the link.
    await fs.rmdir(workspace).catch(() => undefined);
    await this.slots.acquire(taskId, workspace, limitBytes, (image, mnt) => this.mountNew(image, mnt, limitBytes));
    // One volume formatted ahead, for the next slot this executor needs.
    const size = this.imageSizes.get(limitBytes);
    if (size) this.spares.fill(limitBytes, size, 1);
  }

  /** Mounts a new volume of `image` on `dir`: a spare of the right size when one is ready, else a freshly formatted one. */
  private async mountNew(image: string, dir: string, limitBytes: number): Promise<void> {
    if (!(await this.fromSpare(image, dir, limitBytes))) await this.format(image, dir, limitBytes);
  }

  /** Mounts a spare volume as `image` on `dir`, when one of the right size is ready. */
  private async fromSpare(image: string, dir: string, limitBytes: number): Promise<boolean> {
    const file = await this.spares.take(limitBytes);
    if (!file) return false;
    try {
      await this.unmount(dir);
      await fs.rename(file, image);
      await mountImage(image, dir);
      return true;
    } catch (err) {
      this.logger.warn({ image, err: errorMessage(err) }, 'the spare workspace volume could not be used; formatting one');
      await this.unmount(dir).catch(() => undefined);
      await fs.rm(image, { force: true });
      await fs.rm(file, { force: true });
      return false;
    }
  }

  /**
   * Deletes this executor's spare volume and its slots no task uses, and the spares and
   * free slots executors that stopped left behind.
   */
  async dropUnused(): Promise<void> {
    await this.spares.drop();
    await this.slots.dropUnused();
  }

  /** Formats and mounts a new volume on `workspace`, sized so it offers exactly `limitBytes`. */
  private async format(image: string, workspace: string, limitBytes: number): Promise<void> {
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
        await mountImage(image, workspace);
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

  /**
   * Takes a task's workspace off its volume (a link is removed, a mounted folder left
   * empty) and frees the volume: its slot emptied for the next task, or the task's own
   * volume's image deleted.
   */
  async release(taskId: string, workspace: string): Promise<void> {
    this.watch.forget(workspace);
    await this.detach(workspace);
    if (this.mode === 'loop') {
      const slot = await this.slots.holding(taskId);
      if (slot) await this.slots.release(slot);
    }
    await fs.rm(this.imageFile(taskId), { force: true });
    if (this.isProbe(workspace)) await fs.rm(workspace, { recursive: true, force: true });
  }

  /**
   * Moves a task's volume, with everything it wrote, to `target` (an image file): false
   * when the task has no volume. Its files are in `ws-<task>/` of the image, and its free
   * blocks are holes (trimImage); rejects, keeping nothing, when they cannot be cleared.
   */
  async keepVolume(taskId: string, workspace: string, target: string): Promise<boolean> {
    if (this.mode !== 'loop') return false;
    const slot = await this.slots.holding(taskId);
    const own = this.imageFile(taskId);
    if (!slot && !(await fs.stat(own).then(() => true, () => false))) return false;
    await fs.rm(target, { force: true });
    // The slot first: until its link goes, no starting executor takes it for a stopped one's free slot.
    if (slot) await this.slots.retire(slot, target);
    await this.detach(workspace);
    if (!slot) await fs.rename(own, target);
    try {
      await trimImage(target);
    } catch (err) {
      // Not kept rather than kept with an earlier task's files in its free blocks.
      await fs.rm(target, { force: true });
      throw new Error(`the kept volume's free blocks could not be cleared, so it is not kept: ${errorMessage(err)}`);
    }
    return true;
  }

  /** The start-up probe's folder (in the volumes folder; a task's is in WORK_DIR/workspaces). */
  private isProbe(workspace: string): boolean {
    return path.dirname(path.resolve(workspace)) === path.resolve(this.volumesDir) && path.basename(workspace).startsWith(PROBE);
  }

  /** Takes a workspace off its volume: removes the link to a slot's folder, or unmounts a volume of its own. */
  private async detach(workspace: string): Promise<void> {
    const st = await fs.lstat(workspace).catch(() => null);
    // (Gone already when another release of the task got there first.)
    if (st?.isSymbolicLink()) await fs.unlink(workspace).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    else if (st) await this.unmount(workspace);
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
