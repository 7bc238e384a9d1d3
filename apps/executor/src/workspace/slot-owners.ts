import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** How often a live executor marks its slots as in use; another takes them for a stopped one's after STALE_MS without. */
export const BEAT_MS = 60_000;
export const STALE_MS = 5 * 60_000;
/** A slot's folder: `<owner>-<n>`. */
export const SLOT_NAME = /^([0-9a-f]{8})-\d+$/;
/** A task's folder in a slot: `ws-<task>`. */
export const SUB = 'ws-';

const mtimeOf = (p: string) => fs.stat(p).then((st) => st.mtimeMs, () => null);

/**
 * The marks executors leave in the slots folder (`<owner>.alive`, touched every minute
 * while they have slots), and what an executor that stopped marking left: its slots a
 * task's workspace no longer links to. A slot without a mark counts from its folder's own
 * time, so an executor that just started (its mark not written yet) is never taken for
 * one that stopped.
 */
export class SlotOwners {
  constructor(
    private readonly dir: string,
    readonly owner: string,
    /** The folder of task workspaces (WORK_DIR/workspaces): a link there to a slot's folder keeps the slot. */
    private readonly workspaces: string,
  ) {}

  /** Marks this executor's slots as in use now. */
  async touch(): Promise<void> {
    const file = this.mark(this.owner);
    const now = new Date();
    await fs.utimes(file, now, now).catch(() => fs.writeFile(file, '', { mode: 0o600 }).catch(() => undefined));
  }

  /** Removes this executor's mark (it has no slots left). */
  async unmark(): Promise<void> {
    await fs.rm(this.mark(this.owner), { force: true });
  }

  /** The mount folders of stopped executors' slots no task's workspace links to. */
  async stale(): Promise<string[]> {
    const found: string[] = [];
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      const mnt = path.join(this.dir, name);
      if (!(await this.stopped(mnt))) continue;
      const subs = (await fs.readdir(mnt).catch(() => [] as string[])).filter((n) => n.startsWith(SUB));
      if (!(await this.anyLinked(mnt, subs.map((n) => n.slice(SUB.length))))) found.push(mnt);
    }
    return found;
  }

  /**
   * Whether the slot at `mnt` is another executor's that stopped marking its slots STALE_MS
   * ago (without a mark, from the slot folder's own time). Only such a slot may be taken
   * by another executor: a live one empties and reuses its own at any moment.
   */
  async stopped(mnt: string): Promise<boolean> {
    const m = SLOT_NAME.exec(path.basename(mnt));
    if (!m || m[1] === this.owner) return false;
    const seen = (await mtimeOf(this.mark(m[1]))) ?? (await mtimeOf(mnt));
    return seen !== null && Date.now() - seen > STALE_MS;
  }

  /** Removes the stale marks of executors with no slot left. */
  async sweepMarks(): Promise<void> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.alive') && !n.startsWith(this.owner))) {
      const owner = name.slice(0, -'.alive'.length);
      const seen = await mtimeOf(path.join(this.dir, name));
      if (seen !== null && Date.now() - seen > STALE_MS && !names.some((n) => n.startsWith(`${owner}-`))) await fs.rm(path.join(this.dir, name), { force: true });
    }
  }

  private mark(owner: string): string {
    return path.join(this.dir, `${owner}.alive`);
  }

  private async anyLinked(mnt: string, taskIds: string[]): Promise<boolean> {
    for (const id of taskIds) {
      if ((await fs.readlink(path.join(this.workspaces, id)).catch(() => null)) === path.join(mnt, SUB + id)) return true;
    }
    return false;
  }
}
