import { promises as fs } from 'node:fs';
import type { Logger } from 'pino';
import { errorMessage } from '@hivemind/shared/util/errors';
import { measureTree, openUpTree } from './remove-tree';

/** How full a workspace is. */
export interface QuotaUsage {
  usedBytes: number;
  limitBytes: number;
}

/** What `watch` last knew of a workspace. */
export interface WatchedUsage extends QuotaUsage {
  /** When the tree was last measured (ms since the epoch); 0 before the first measure. */
  measuredAt: number;
  /** How many full measures were made (each a `du` of the tree). */
  measures: number;
}

interface WatchState extends WatchedUsage {
  /** Free bytes of the workspace's filesystem when it was last measured. */
  freeAtMeasure: number;
  measuring: Promise<void> | null;
}

/** watch: the tree is measured at least this often. */
const WATCH_MEASURE_MS = 2000;
/** watch: a drop of free space by more than this share of the quota since the last measure measures at once. */
const WATCH_DROP_SHARE = 0.25;
/** watch: longest a measure of the tree may take. */
const WATCH_MEASURE_TIMEOUT_MS = 30_000;

/**
 * The `watch` quota (see WorkspaceQuota). The workspace is a plain folder, measured
 * (`du`: allocated blocks, so space reserved with fallocate counts; deep paths counted; hard links once) at least every
 * 2 s; between measures a cheap check (statfs of the workspace's filesystem, every
 * `pollMs`) measures at once when free space dropped by more than a quarter of the
 * quota, or by more than the quota has left, since the last measure. A task past its
 * quota is stopped. What it can promise: a task is seen past its quota within about
 * `pollMs` plus one `du` of its tree after it got there, and it is stopped; the space
 * comes back when its workspace is removed. What it cannot: a bound on the disk. A task
 * overshoots by what it writes until it is stopped, and fallocate writes gigabytes per
 * millisecond, so a task can fill the disk (the runtime's per-file limit, RunSpec
 * maxFileBytes = the quota, bounds one file, not many). Folders the task closed (mode
 * 000) are opened up to be counted, which a non-root executor can do only for files it
 * owns. Writes elsewhere (/tmp in the container, image layers) are not counted. When
 * `du` fails or takes more than 30 s, the workspace is taken to use what it last
 * measured plus all the free space lost since. For a hard bound use `loop`.
 *
 * Per workspace folder it keeps the last measure and the free space of its filesystem then.
 */
export class TreeWatch {
  private readonly watched = new Map<string, WatchState>();

  constructor(private readonly logger: Logger) {}

  /** Forgets a workspace (a new task's, or one released). */
  forget(workspace: string): void {
    this.watched.delete(workspace);
  }

  /** What was last known of a workspace, without measuring; null when not watched. */
  last(workspace: string): WatchedUsage | null {
    const s = this.watched.get(workspace);
    return s ? { usedBytes: s.usedBytes, limitBytes: s.limitBytes, measuredAt: s.measuredAt, measures: s.measures } : null;
  }

  /** Measures now. */
  async usage(workspace: string, limitBytes: number): Promise<QuotaUsage | null> {
    const state = this.state(workspace, limitBytes);
    await this.measure(workspace, state, await freeBytes(workspace));
    return state.measures ? { usedBytes: state.usedBytes, limitBytes } : null;
  }

  /** Whether the last measure is past the quota, measuring first when one is due. */
  async full(workspace: string, limitBytes: number): Promise<boolean> {
    const state = this.state(workspace, limitBytes);
    const free = await freeBytes(workspace);
    const drop = free === null || !state.measures ? 0 : Math.max(0, state.freeAtMeasure - free);
    const due =
      !state.measures ||
      Date.now() - state.measuredAt >= WATCH_MEASURE_MS ||
      drop > limitBytes * WATCH_DROP_SHARE ||
      state.usedBytes + drop > limitBytes;
    if (due) await this.measure(workspace, state, free);
    return state.usedBytes > limitBytes;
  }

  private state(workspace: string, limitBytes: number): WatchState {
    let s = this.watched.get(workspace);
    if (!s) {
      s = { usedBytes: 0, limitBytes, measuredAt: 0, measures: 0, freeAtMeasure: 0, measuring: null };
      this.watched.set(workspace, s);
    }
    s.limitBytes = limitBytes;
    return s;
  }

  /** Measures the tree (one measure at a time per workspace), opening up folders it could not read. */
  private async measure(workspace: string, state: WatchState, freeBefore: number | null): Promise<void> {
    state.measuring ??= (async () => {
      try {
        let m = await measureTree(workspace, { timeoutMs: WATCH_MEASURE_TIMEOUT_MS });
        if (!m.complete) {
          await openUpTree(workspace, { timeoutMs: WATCH_MEASURE_TIMEOUT_MS }).catch(() => undefined);
          m = await measureTree(workspace, { timeoutMs: WATCH_MEASURE_TIMEOUT_MS });
        }
        state.usedBytes = m.bytes;
      } catch (err) {
        // Not measurable (gone, or too big to measure in time): count all the space lost since.
        const free = await freeBytes(workspace);
        if (state.measures && free !== null) state.usedBytes += Math.max(0, state.freeAtMeasure - free);
        this.logger.debug({ workspace, err: errorMessage(err) }, 'workspace not measured');
      }
      state.measuredAt = Date.now();
      state.measures += 1;
      state.freeAtMeasure = freeBefore ?? (await freeBytes(workspace)) ?? 0;
    })().finally(() => (state.measuring = null));
    await state.measuring;
  }
}

/** Free bytes of the filesystem holding `dir`; null when it cannot be read. */
async function freeBytes(dir: string): Promise<number | null> {
  const st = await fs.statfs(dir).catch(() => null);
  return st ? st.bavail * st.bsize : null;
}
