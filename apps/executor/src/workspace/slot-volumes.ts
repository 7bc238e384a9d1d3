import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '@hivemind/shared/util/errors';
import { isMountPoint } from './remove-tree';
import { BEAT_MS, SLOT_NAME, SlotOwners, SUB } from './slot-owners';
import { volumeTools } from './volume-tools';

/** A workspace volume kept mounted between tasks: its image, where it is mounted, who uses it. */
export interface Slot {
  image: string;
  mnt: string;
  limitBytes: number;
  /** The task whose workspace is in it now (or that claimed it), or null. */
  taskId: string | null;
  /** The volume's device number: a folder made in `mnt` is on the volume only if it has it. */
  dev: number;
  /** Blocks and inodes in use when it was empty (what an emptied slot must be back to). */
  baseline: { usedBytes: number; usedInodes: number };
  /** Set while it is emptied or retired: a second release of its task (the reconciler's, say) leaves it alone. */
  busy?: boolean;
}

/** A slot a task left more entries in than this is replaced, not emptied. */
export const WIPE_MAX_ENTRIES = 2000;
/** A slot a task left more bytes in than this is replaced too (its data, or folders of very many names: slow to remove one by one). */
export const WIPE_MAX_BYTES = 32 * 1024 * 1024;
/** A wipe that takes longer (a tree of very many hard links, say) is given up and the slot replaced. */
const WIPE_TIMEOUT_MS = 5_000;
/** A task folder of at most this many entries (the folder's own inode included) is first emptied in the executor itself: see quickRemove. */
const QUICK_WIPE_ENTRIES = 64;

/**
 * Removes a task's folder in this process when everything in it lies directly in it (files,
 * links, empty folders): true when it is gone. unlink and rmdir never follow the name they
 * are given, and the folder itself is the slot's (the task sees its contents, never its
 * name or its parent), so nothing a task made leads them elsewhere, whether or not a
 * process of the task still runs. Anything else (a folder with something in it, say) and
 * it stops, false, and the volume tool helper's `rm` removes what is left: a fork and an
 * exec spared for tasks that leave little.
 */
async function quickRemove(sub: string): Promise<boolean> {
  try {
    for (const e of await fs.readdir(sub, { withFileTypes: true })) {
      const p = path.join(sub, e.name);
      if (e.isDirectory()) await fs.rmdir(p);
      else await fs.unlink(p);
    }
    await fs.rmdir(sub);
    return true;
  } catch {
    return false;
  }
}

async function usedOf(dir: string): Promise<{ usedBytes: number; usedInodes: number }> {
  const st = await fs.statfs(dir);
  return { usedBytes: (st.blocks - st.bfree) * st.bsize, usedInodes: st.files - st.ffree };
}

const devOf = (p: string) => fs.stat(p).then((st) => st.dev, () => -1);

/**
 * The loop-mode workspace volumes an executor keeps mounted between its tasks (one per
 * task it runs at once), so a task's start and end need no mkfs, no mount and no unmount:
 * each cost ~5–8 ms of the machine's CPU per task.
 *
 * A slot is an ext4 image of the quota's size, loop-mounted (nosuid, nodev, discard) on a
 * folder in `dir`, which only root may enter (`<dir>/<owner>-<n>`). A task gets a fresh
 * folder in it, `ws-<task>`, and the task's workspace path is a link to that folder:
 * Docker mounts the folder the link leads to, with the volume's nosuid and nodev. The task
 * sees that folder and nothing else of the volume, and the volume's statfs is its quota.
 * A folder is checked to be on the volume (its device) before it is used: an unmounted
 * slot never puts a task on the host's disk.
 *
 * After the task its folder is removed with coreutils' rm in a volume tool helper (openat:
 * a link the task made is never followed), and the slot is reused only once the volume
 * is back to exactly the inodes it had empty, and within 1 MB of its blocks. The folder
 * is new for each task (never the volume's root), so no owner, mode, xattr or ACL a task
 * set carries over; `discard` gives the freed blocks back to the image file's holes, so
 * their space does not outlive the task (a retired slot's image is trimmed offline as
 * well: see trimImage). A task that left more than
 * WIPE_MAX_ENTRIES entries or WIPE_MAX_BYTES, or whose folder does not go, has its slot
 * replaced instead (unmounted and its image deleted: constant time, whatever it made).
 *
 * Slots are named after their executor (random per process), which marks them as in use
 * every minute and then also drops the slots of executors that stopped doing so five
 * minutes ago (they crashed), except a slot a task's workspace still links to (a task
 * another executor may adopt; whoever releases it drops the slot, or, while the slot's
 * executor may still be alive, only removes the link and leaves the slot to that
 * executor or to a later sweep). A release of a task whose slot is already being emptied
 * or retired (the reconciler's, say, while the task's own clean-up runs) leaves it alone.
 * See SlotOwners.
 */
export class SlotVolumes {
  private readonly owner = randomBytes(4).toString('hex');
  private readonly owners: SlotOwners;
  private readonly slots: Slot[] = [];
  private beat: NodeJS.Timeout | null = null;
  private made = 0;

  constructor(
    private readonly dir: string,
    /** The folder of task workspaces (WORK_DIR/workspaces), to see which slots are still linked to. */
    workspaces: string,
    private readonly logger: Logger,
  ) {
    this.owners = new SlotOwners(dir, this.owner, workspaces);
  }

  /**
   * Links `workspace` to a fresh folder of a free slot for `limitBytes`; `make` formats
   * and mounts a new volume at a path when no slot is free (or the free one is gone).
   */
  async acquire(taskId: string, workspace: string, limitBytes: number, make: (image: string, mnt: string) => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const slot = (await this.free(taskId, limitBytes)) ?? (await this.create(taskId, limitBytes, make));
      const sub = path.join(slot.mnt, SUB + taskId);
      try {
        await fs.mkdir(sub, { mode: 0o755 });
        if ((await devOf(sub)) !== slot.dev) throw new Error(`the workspace volume ${slot.mnt} is not mounted any more`);
        await fs.mkdir(path.dirname(workspace), { recursive: true });
        await fs.symlink(sub, workspace);
        return;
      } catch (err) {
        // A folder on the host's disk, where the volume should have been, goes too.
        if ((await devOf(sub)) !== slot.dev) await fs.rmdir(sub).catch(() => undefined);
        await this.drop(slot);
        if (attempt === 2) throw err;
        this.logger.warn({ taskId, err: errorMessage(err) }, 'workspace slot unusable; making another');
      }
    }
  }

  /** Claims a free slot of this size, still mounted; free slots of another size are dropped. */
  private async free(taskId: string, limitBytes: number): Promise<Slot | null> {
    for (let slot = this.claim(taskId); slot; slot = this.claim(taskId)) {
      if (slot.limitBytes === limitBytes && (await devOf(slot.mnt)) === slot.dev) return slot;
      await this.drop(slot);
    }
    return null;
  }

  /** A free slot, claimed for `taskId` before anything is awaited: two tasks starting together never get the same one. */
  private claim(taskId: string): Slot | null {
    const slot = this.slots.find((s) => s.taskId === null);
    if (slot) slot.taskId = taskId;
    return slot ?? null;
  }

  private async create(taskId: string, limitBytes: number, make: (image: string, mnt: string) => Promise<void>): Promise<Slot> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (!this.beat) {
      await fs.chmod(this.dir, 0o700);
      this.beat = setInterval(() => void this.tick(), BEAT_MS).unref();
      await this.owners.touch();
    }
    const name = `${this.owner}-${this.made++}`;
    const slot: Slot = { image: path.join(this.dir, `${name}.img`), mnt: path.join(this.dir, name), limitBytes, taskId, dev: -1, baseline: { usedBytes: 0, usedInodes: 0 } };
    try {
      await fs.mkdir(slot.mnt, { mode: 0o700 });
      const hostDev = await devOf(slot.mnt);
      await make(slot.image, slot.mnt);
      slot.dev = await devOf(slot.mnt);
      if (slot.dev === hostDev) throw new Error(`the workspace volume ${slot.mnt} did not stay mounted`);
      slot.baseline = await usedOf(slot.mnt);
    } catch (err) {
      await this.drop(slot);
      throw err;
    }
    // Listed once ready, already the task's.
    this.slots.push(slot);
    return slot;
  }

  /**
   * This executor's slot holding `taskId`'s workspace (null while it is being emptied or
   * retired), or a stopped executor's (SlotOwners.stopped): null when none does. A live
   * executor's slot is never another's to take, even with the task's folder in it: that
   * executor releases it, and may empty and reuse it at any moment.
   */
  async holding(taskId: string): Promise<Slot | null> {
    const mine = this.slots.find((s) => s.taskId === taskId);
    if (mine) return mine.busy ? null : mine;
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      if (!SLOT_NAME.test(name) || name.startsWith(`${this.owner}-`)) continue;
      const mnt = path.join(this.dir, name);
      if (!(await fs.stat(path.join(mnt, SUB + taskId)).then(() => true, () => false))) continue;
      return (await this.owners.stopped(mnt)) ? this.foreign(mnt, taskId) : null;
    }
    return null;
  }

  /**
   * Frees a task's slot, its workspace link already removed: this executor's slot is emptied
   * for the next task (or replaced, see the class); another executor's is dropped.
   */
  async release(slot: Slot): Promise<void> {
    if (!this.slots.includes(slot)) return this.drop(slot);
    if (slot.busy) return;
    slot.busy = true;
    const sub = path.join(slot.mnt, SUB + slot.taskId);
    try {
      if ((await devOf(slot.mnt)) !== slot.dev) throw new Error('the slot volume is not mounted any more');
      const left = await usedOf(slot.mnt);
      const entries = left.usedInodes - slot.baseline.usedInodes;
      const bytes = left.usedBytes - slot.baseline.usedBytes;
      if (entries > WIPE_MAX_ENTRIES || bytes > WIPE_MAX_BYTES) throw new Error(`the task left ${entries} entries and ${bytes} bytes`);
      if ((await devOf(sub)) === slot.dev && !(entries <= QUICK_WIPE_ENTRIES && (await quickRemove(sub)))) await volumeTools.remove(sub, WIPE_TIMEOUT_MS);
      const now = await usedOf(slot.mnt);
      if (now.usedInodes !== slot.baseline.usedInodes || now.usedBytes > slot.baseline.usedBytes + 1024 * 1024) {
        throw new Error(`the emptied volume holds ${now.usedInodes - slot.baseline.usedInodes} entries and ${now.usedBytes - slot.baseline.usedBytes} bytes more than when new`);
      }
      slot.taskId = null;
    } catch (err) {
      this.logger.info({ taskId: slot.taskId, err: errorMessage(err) }, 'workspace slot replaced, not emptied');
      await this.drop(slot);
    } finally {
      slot.busy = false;
    }
  }

  /** Takes the slot out of use and moves its image to `target` (a failed task's kept workspace). */
  async retire(slot: Slot, target: string): Promise<void> {
    // Not lazily: the kept image must hold everything the task wrote. When that fails the
    // slot stays listed, and the task's release empties or drops it.
    if (slot.busy) throw new Error(`the workspace slot ${slot.mnt} is being emptied`);
    slot.busy = true;
    try {
      if (await isMountPoint(slot.mnt)) await volumeTools.run('umount', [slot.mnt], 30_000);
    } finally {
      slot.busy = false;
    }
    this.forget(slot);
    try {
      await fs.rename(slot.image, target);
    } finally {
      await fs.rm(slot.image, { force: true });
      await fs.rmdir(slot.mnt).catch(() => undefined);
    }
  }

  /** Unmounts a slot (lazily: a container still using it keeps it until it is removed) and deletes its image. */
  async drop(slot: Slot): Promise<void> {
    this.forget(slot);
    await this.unmount(slot.mnt).catch((err: unknown) => this.logger.warn({ slot: slot.mnt, err: errorMessage(err) }, 'could not unmount a workspace slot'));
    await fs.rm(slot.image, { force: true });
    await fs.rmdir(slot.mnt).catch(() => undefined);
  }

  /** Drops this executor's free slots, and those executors that stopped left (see dropStale). */
  async dropUnused(): Promise<void> {
    for (let slot = this.claim('(dropped)'); slot; slot = this.claim('(dropped)')) await this.drop(slot);
    if (!this.slots.length && this.beat) {
      clearInterval(this.beat);
      this.beat = null;
      await this.owners.unmark();
    }
    await this.dropStale();
  }

  /** Drops the slots of executors that stopped marking theirs (SlotOwners.stale), then their marks. */
  async dropStale(): Promise<void> {
    for (const mnt of await this.owners.stale()) await this.drop(this.foreign(mnt, null));
    await this.owners.sweepMarks();
  }

  private foreign(mnt: string, taskId: string | null): Slot {
    return { image: `${mnt}.img`, mnt, limitBytes: 0, taskId, dev: -1, baseline: { usedBytes: 0, usedInodes: 0 } };
  }

  private forget(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
  }

  private async unmount(mnt: string): Promise<void> {
    if (await isMountPoint(mnt)) await volumeTools.run('umount', ['-l', mnt], 30_000);
  }

  private async tick(): Promise<void> {
    await this.owners.touch();
    await this.dropStale().catch((err: unknown) => this.logger.warn({ err: errorMessage(err) }, "could not drop stopped executors' workspace slots"));
  }
}
