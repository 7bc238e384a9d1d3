import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '@hivemind/shared/util/errors';
import { sleep } from '@hivemind/shared/util/ticker';
import { volumeTools, VolumeToolError } from './volume-tools';

interface Spare {
  limitBytes: number;
  file: string;
}

/**
 * Makes an empty ext4 image of `size` bytes (sparse; its tables initialised lazily), with
 * no journal: a journal keeps copies of the metadata blocks a task wrote (its file names,
 * link targets, extended attributes) after the files are gone, where a slot's next task's
 * kept image would carry them. A workspace volume is never used again after a crash.
 */
export async function formatImage(file: string, size: number): Promise<void> {
  const fh = await fs.open(file, 'w', 0o600);
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  await volumeTools.run('mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^has_journal', '-E', 'lazy_itable_init=1', file], 60_000);
}

/**
 * Mounts an image as a workspace volume on `dir` (no setuid, no devices, and the blocks
 * its files free handed back to the image file's holes), without its lost+found.
 */
export async function mountImage(image: string, dir: string): Promise<void> {
  await volumeTools.run('mount', ['-o', 'loop,nosuid,nodev,discard', image, dir], 30_000);
  await fs.rm(path.join(dir, 'lost+found'), { recursive: true, force: true });
}

/**
 * Turns every free block of an unmounted image back into a hole of its file, after a full
 * check (`e2fsck -p -f -E discard`), so a kept slot image holds nothing an earlier task
 * deleted. The `discard` mount option alone does not promise that: with a journal, ext4
 * discards freed blocks from a work queue after each commit and gives up those still
 * queued once an unmount has begun (the volumes have no journal now; this holds for any
 * image, and a kept one is checked as well). The image
 * must be let go by every loop device first (a mount namespace made while it was mounted
 * may hold it after our unmount): waited for up to a second, else this rejects. e2fsck
 * exits 1 when it corrected something, and discards only on a clean volume: it runs again.
 */
export async function trimImage(image: string): Promise<void> {
  for (let waited = 0; await loopHolds(image); waited += 50) {
    if (waited >= 1000) throw new Error(`${image} is still held by a loop device (mounted elsewhere, in another mount namespace say)`);
    await sleep(50);
  }
  const e2fsck = () => volumeTools.run('e2fsck', ['-p', '-f', '-E', 'discard', image], 120_000);
  await e2fsck().catch((err: unknown) => {
    if (err instanceof VolumeToolError && err.exitCode === 1) return e2fsck();
    throw err;
  });
}

/** Whether a loop device is backed by `image` (its `/sys/block/loopN/loop/backing_file`, which follows renames). */
async function loopHolds(image: string): Promise<boolean> {
  const file = await fs.realpath(image).catch(() => path.resolve(image));
  for (const dev of await fs.readdir('/sys/block').catch(() => [] as string[])) {
    if (!dev.startsWith('loop')) continue;
    const backing = await fs.readFile(`/sys/block/${dev}/loop/backing_file`, 'utf8').catch(() => null);
    if (backing?.trimEnd() === file) return true;
  }
  return false;
}

/**
 * Workspace volumes formatted ahead of time, so a task's start is a rename and a mount
 * rather than an `mkfs`: up to `max` of them (one per task the executor runs at once),
 * each for the quota last asked for. They live in `dir`, out of the reconciler's way;
 * the file names start with the executor's pid.
 */
export class SpareVolumes {
  /** Oldest first; a pending one is being formatted (null: it could not be). */
  private readonly queue: Promise<Spare | null>[] = [];

  constructor(
    private readonly dir: string,
    private readonly max: number,
    private readonly logger: Logger,
  ) {}

  /** A spare's image file for `limitBytes` (waiting for one being formatted), or null when none is. */
  async take(limitBytes: number): Promise<string | null> {
    // Taken off the queue before awaiting, so two tasks starting together never get the same one.
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      const spare = await next.catch(() => null);
      if (!spare) continue;
      if (spare.limitBytes === limitBytes) return spare.file;
      await fs.rm(spare.file, { force: true });
    }
    return null;
  }

  /** Formats spares of `size` bytes for `limitBytes` until `wanted` (at most `max`) are ready or under way. */
  fill(limitBytes: number, size: number, wanted: number): void {
    while (this.queue.length < Math.min(wanted, this.max)) this.queue.push(this.make(limitBytes, size));
  }

  private async make(limitBytes: number, size: number): Promise<Spare | null> {
    try {
      await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
      const file = path.join(this.dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.img`);
      await formatImage(file, size);
      return { limitBytes, file };
    } catch (err) {
      this.logger.debug({ err: errorMessage(err) }, 'no spare workspace volume');
      return null;
    }
  }

  /** Deletes this executor's spares, and those executors that stopped left behind (older than an hour; `all`: any age). */
  async drop(all = false): Promise<void> {
    const mine = this.queue.splice(0);
    for (const s of await Promise.all(mine.map((p) => p.catch(() => null)))) if (s) await fs.rm(s.file, { force: true });
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      const file = path.join(this.dir, name);
      const st = await fs.stat(file).catch(() => null);
      if (st && (all || Date.now() - st.mtimeMs > 3600_000)) await fs.rm(file, { force: true });
    }
  }
}
