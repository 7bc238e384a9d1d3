import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '@hivemind/shared/util/errors';
import { isMountPoint } from './remove-tree';
import { volumeTools } from './volume-tools';

/** A workspace volume kept mounted between tasks: its image, where it is mounted, who uses it. */
export interface Slot {
  image: string;
  mnt: string;
  limitBytes: number;
  /** The task whose workspace is in it now, or null. */
  taskId: string | null;
  /** Blocks and inodes in use when it was empty (what a wiped slot must be back to). */
  baseline: { usedBytes: number; usedInodes: number };
}

/** A slot with more entries than this left in it is replaced, not emptied file by file. */
export const WIPE_MAX_ENTRIES = 2000;
/** How often a live executor marks its slots as in use; another drops them after STALE_MS without. */
const BEAT_MS = 60_000;
const STALE_MS = 5 * 60_000;

const SUB = 'ws-';

async function usedOf(dir: string): Promise<{ usedBytes: number; usedInodes: number }> {
  const st = await fs.statfs(dir);
  return { usedBytes: (st.blocks - st.bfree) * st.bsize, usedInodes: st.files - st.ffree };
}

/**
 * The loop-mode workspace volumes an executor keeps mounted between its tasks (one per
 * task it runs at once), so a task's start and end need no mkfs, no loop mount and no
 * unmount of an ext4 filesystem: each cost ~5–8 ms of the machine's CPU per task.
 *
 * A slot is an ext4 image of the quota's size, loop-mounted (nosuid, nodev) on a folder
 * only root may enter (`<dir>/<owner>-<n>`). A task gets a fresh folder in it,
 * `ws-<task>`, bind-mounted on the task's workspace path: the bind keeps nosuid and nodev,
 * the task sees that folder and nothing else of the volume, and the volume's statfs is
 * its quota. The folder is new for each task (never the volume's root), so no owner,
 * mode, xattr or ACL a task set carries over to the next one.
 *
 * After the task the folder is removed, and the slot is reused only once the volume is
 * back to exactly the blocks and inodes it had empty. A task that left more than
 * WIPE_MAX_ENTRIES entries, or whose folder does not go, has its slot replaced instead
 * (the volume is unmounted and its image deleted: constant time, whatever the task made).
 *
 * Slots are named after their executor (`owner`, random per process), which touches
 * `<owner>.alive` every minute. Another executor drops slots whose owner has not for five
 * minutes (it crashed), unless a task's workspace is still bound to one (a task an
 * executor may still adopt: whoever releases that task drops the slot).
 */
export class SlotVolumes {
  private readonly owner = randomBytes(4).toString('hex');
  private readonly slots: Slot[] = [];
  private beat: NodeJS.Timeout | null = null;
  private made = 0;

  constructor(
    private readonly dir: string,
    /** The folder of task workspaces (WORK_DIR/workspaces), to see which slots are still bound. */
    private readonly workspaces: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Binds a fresh folder of a free slot for `limitBytes` on `workspace`; `make` formats
   * and mounts a new volume at a path when no slot is free.
   */
  async acquire(taskId: string, workspace: string, limitBytes: number, make: (image: string, mnt: string) => Promise<void>): Promise<void> {
    const slot = (await this.free(taskId, limitBytes)) ?? (await this.create(taskId, limitBytes, make));
    try {
      const sub = path.join(slot.mnt, SUB + taskId);
      await fs.mkdir(sub, { mode: 0o755 });
      await volumeTools.run('mount', ['--bind', sub, workspace], 30_000);
    } catch (err) {
      await this.drop(slot);
      throw err;
    }
  }

  /** Claims a free slot of this size, checked to be still mounted; free slots of another size are dropped. */
  private async free(taskId: string, limitBytes: number): Promise<Slot | null> {
    for (let slot = this.slots.find((s) => s.taskId === null); slot; slot = this.slots.find((s) => s.taskId === null)) {
      // Claimed before anything is awaited: two tasks starting together never get the same slot.
      slot.taskId = taskId;
      if (slot.limitBytes === limitBytes && (await isMountPoint(slot.mnt))) return slot;
      await this.drop(slot);
    }
    return null;
  }

  private async create(taskId: string, limitBytes: number, make: (image: string, mnt: string) => Promise<void>): Promise<Slot> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (!this.beat) {
      this.beat = setInterval(() => void this.touch(), BEAT_MS).unref();
      await this.touch();
      // Slots an executor that crashed left behind are looked for once, as this one starts using slots.
      await this.dropStale();
    }
    const name = `${this.owner}-${this.made++}`;
    const slot: Slot = { image: path.join(this.dir, `${name}.img`), mnt: path.join(this.dir, name), limitBytes, taskId, baseline: { usedBytes: 0, usedInodes: 0 } };
    try {
      await fs.mkdir(slot.mnt, { mode: 0o700 });
      await make(slot.image, slot.mnt);
      slot.baseline = await usedOf(slot.mnt);
    } catch (err) {
      await this.drop(slot);
      throw err;
    }
    // Listed once ready, already the task's.
    this.slots.push(slot);
    return slot;
  }

  /** This executor's slot holding `taskId`'s workspace, or another (crashed) executor's: null when none does. */
  async holding(taskId: string): Promise<Slot | null> {
    const mine = this.slots.find((s) => s.taskId === taskId);
    if (mine) return mine;
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      if (name.endsWith('.img') || name.endsWith('.alive') || this.slots.some((s) => s.mnt.endsWith(`/${name}`))) continue;
      const mnt = path.join(this.dir, name);
      if (await fs.stat(path.join(mnt, SUB + taskId)).then(() => true, () => false)) {
        return { image: `${mnt}.img`, mnt, limitBytes: 0, taskId, baseline: { usedBytes: 0, usedInodes: 0 } };
      }
    }
    return null;
  }

  /**
   * Frees a task's slot, its workspace already unbound: this executor's slot is emptied
   * for the next task (or replaced, see the class); another executor's is dropped.
   */
  async release(slot: Slot): Promise<void> {
    if (!this.slots.includes(slot)) return this.drop(slot);
    const sub = path.join(slot.mnt, SUB + slot.taskId);
    try {
      if (!(await isMountPoint(slot.mnt))) throw new Error('the slot volume is not mounted any more');
      const left = (await usedOf(slot.mnt)).usedInodes - slot.baseline.usedInodes;
      if (left > WIPE_MAX_ENTRIES) throw new Error(`the task left ${left} entries`);
      // As root, no mode stops the removal; symbolic links are removed, never followed.
      await fs.rm(sub, { recursive: true, force: true, maxRetries: 0 });
      const now = await usedOf(slot.mnt);
      if (now.usedInodes !== slot.baseline.usedInodes || now.usedBytes > slot.baseline.usedBytes + 1024 * 1024) {
        throw new Error(`the emptied volume holds ${now.usedInodes - slot.baseline.usedInodes} entries and ${now.usedBytes - slot.baseline.usedBytes} bytes more than when new`);
      }
      slot.taskId = null;
    } catch (err) {
      this.logger.debug({ taskId: slot.taskId, err: errorMessage(err) }, 'workspace slot replaced, not emptied');
      await this.drop(slot);
    }
  }

  /** Takes the slot out of use and moves its image to `target` (a failed task's kept workspace). */
  async retire(slot: Slot, target: string): Promise<void> {
    this.forget(slot);
    // Not lazily: the kept image must hold everything the task wrote.
    if (await isMountPoint(slot.mnt)) await volumeTools.run('umount', [slot.mnt], 30_000);
    await fs.rename(slot.image, target);
    await fs.rmdir(slot.mnt).catch(() => undefined);
  }

  /** Unmounts a slot (lazily: a workspace still bound to it keeps it until unbound) and deletes its image. */
  async drop(slot: Slot): Promise<void> {
    this.forget(slot);
    await this.unmount(slot.mnt).catch((err: unknown) => this.logger.warn({ slot: slot.mnt, err: errorMessage(err) }, 'could not unmount a workspace slot'));
    await fs.rm(slot.image, { force: true });
    await fs.rmdir(slot.mnt).catch(() => undefined);
  }

  /** Drops this executor's free slots, and those executors that stopped left (see dropStale). */
  async dropUnused(): Promise<void> {
    for (const slot of this.slots.filter((s) => s.taskId === null)) await this.drop(slot);
    if (!this.slots.length && this.beat) {
      clearInterval(this.beat);
      this.beat = null;
      await fs.rm(path.join(this.dir, `${this.owner}.alive`), { force: true });
    }
    await this.dropStale();
  }

  /** Drops the slots of executors that stopped marking theirs, but not one a task's workspace is still bound to. */
  async dropStale(): Promise<void> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const m = /^([0-9a-f]{8})-\d+$/.exec(name);
      if (!m || m[1] === this.owner) continue;
      const beat = await fs.stat(path.join(this.dir, `${m[1]}.alive`)).catch(() => null);
      if (beat && Date.now() - beat.mtimeMs < STALE_MS) continue;
      const mnt = path.join(this.dir, name);
      const subs = (await fs.readdir(mnt).catch(() => [] as string[])).filter((n) => n.startsWith(SUB));
      if (await this.anyBound(subs.map((n) => n.slice(SUB.length)))) continue;
      await this.drop({ image: `${mnt}.img`, mnt, limitBytes: 0, taskId: null, baseline: { usedBytes: 0, usedInodes: 0 } });
    }
    const now = await fs.readdir(this.dir).catch(() => [] as string[]);
    for (const name of now.filter((n) => n.endsWith('.alive') && !n.startsWith(this.owner))) {
      const owner = name.slice(0, -'.alive'.length);
      if (!now.some((n) => n.startsWith(`${owner}-`))) await fs.rm(path.join(this.dir, name), { force: true });
    }
  }

  private async anyBound(taskIds: string[]): Promise<boolean> {
    for (const id of taskIds) if (await isMountPoint(path.join(this.workspaces, id))) return true;
    return false;
  }

  private forget(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
  }

  private async unmount(mnt: string): Promise<void> {
    if (await isMountPoint(mnt)) await volumeTools.run('umount', ['-l', mnt], 30_000);
  }

  private async touch(): Promise<void> {
    const file = path.join(this.dir, `${this.owner}.alive`);
    const now = new Date();
    await fs.utimes(file, now, now).catch(() => fs.writeFile(file, '', { mode: 0o600 }).catch(() => undefined));
  }
}
