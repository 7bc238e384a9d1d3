import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorCode, errorMessage } from '@hivemind/shared/util/errors';

/**
 * Removing and measuring trees a task made. A task controls its workspace's shape: folders
 * nested deeper than PATH_MAX (Node's path-based fs calls fail on them with ENAMETOOLONG),
 * folders without read/search/write permission (mode 000: a non-root executor's rm gets
 * EACCES), read-only files. GNU coreutils and findutils walk trees with openat (fts), which
 * handles every one of those, so the work is theirs, run with a time limit.
 */

const DEFAULT_TIMEOUT_MS = 120_000;
const MAX_BUFFER = 4 * 1024 * 1024;
/** A fixed environment: absolute PATH only (find -execdir refuses a relative one), messages in English. */
const TOOL_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' };

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool to its end (or its time limit); a non-zero exit is returned, not thrown. */
function tool(cmd: string, args: string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_BUFFER, env: TOOL_ENV }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
      if (e.killed) return reject(new Error(`${cmd} did not finish within ${Math.round(timeoutMs / 1000)} s`));
      if (typeof e.code !== 'number') return reject(new Error(`${cmd} could not run: ${errorMessage(err)}`));
      resolve({ code: e.code, stdout, stderr });
    });
  });
}

/** The first lines of a tool's complaints, for an error message. */
function firstLines(text: string, n = 3): string {
  const lines = text.trim().split('\n').filter(Boolean);
  const shown = lines.slice(0, n).map((l) => (l.length > 300 ? `${l.slice(0, 140)}…${l.slice(-140)}` : l));
  return shown.join('; ') + (lines.length > n ? ` (and ${lines.length - n} more)` : '');
}

/**
 * Gives the owner read, write and search permission on every folder of the tree that lacks
 * it (the folders this process owns: root's are opened regardless), never leaving the
 * tree's filesystem. Each folder is opened before it is read, so mode-000 folders nested
 * in mode-000 folders are reached.
 */
export async function openUpTree(dir: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  await tool('find', [dir, '-xdev', '-type', 'd', '!', '-perm', '-u=rwx', '-execdir', 'chmod', 'u+rwx', '--', '{}', ';'], opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
}

/**
 * Removes `dir` and everything under it, whatever a task made there: trees deeper than
 * PATH_MAX, mode-000 folders, read-only files. Never crosses into another filesystem
 * mounted inside (a loop volume still mounted stays, and the removal fails saying so);
 * refuses `dir` when it is itself a mount point. A missing `dir` is removed already.
 *
 * Throws an Error naming the path and the reason when the tree is (partly) still there.
 */
export async function removeTree(dir: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1000, deadline - Date.now());
  const st = await fs.lstat(dir).catch((err: unknown) => {
    if (errorCode(err) === 'ENOENT') return null;
    throw new Error(`could not remove ${dir}: ${errorMessage(err)}`);
  });
  if (!st) return;
  if (st.isDirectory()) {
    const parent = await fs.stat(path.dirname(path.resolve(dir))).catch(() => null);
    if (parent && parent.dev !== st.dev) throw new Error(`could not remove ${dir}: it is a mount point (unmount it first)`);
    // Fast path without a child process: an empty folder (a loop volume's mount point once
    // unmounted). Anything else (not empty, not permitted) goes to rm below.
    if (await fs.rmdir(dir).then(() => true, () => false)) return;
  }
  let rm: Ran;
  try {
    // Fast path: most trees need no opening up.
    rm = await tool('rm', ['-rf', '--one-file-system', '--', dir], left());
    if (rm.code !== 0 && st.isDirectory()) {
      await openUpTree(dir, { timeoutMs: left() });
      rm = await tool('rm', ['-rf', '--one-file-system', '--', dir], left());
    }
  } catch (err) {
    throw new Error(`could not remove ${dir}: ${errorMessage(err)}`);
  }
  const still = await fs.lstat(dir).then(
    () => true,
    () => false,
  );
  if (rm.code === 0 && !still) return;
  throw new Error(`could not remove ${dir}: ${firstLines(rm.stderr) || `rm exited with ${rm.code}`}`);
}

/** Allocated bytes of a tree, and whether every folder of it could be read. */
export interface TreeMeasure {
  bytes: number;
  complete: boolean;
}

/**
 * Measures a tree with `du`: allocated blocks (so space reserved by fallocate counts, holes
 * in sparse files do not), hard links once, deep paths included, other filesystems left
 * out. Folders it cannot read are left out and make `complete` false.
 */
export async function measureTree(dir: string, opts: { timeoutMs?: number } = {}): Promise<TreeMeasure> {
  const ran = await tool('du', ['-s', '-B1', '-x', '--', dir], opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const bytes = Number(/^(\d+)\s/.exec(ran.stdout)?.[1]);
  if (!Number.isFinite(bytes)) throw new Error(`could not measure ${dir}: ${firstLines(ran.stderr) || `du exited with ${ran.code}`}`);
  return { bytes, complete: ran.code === 0 };
}

/** Bytes a folder tree takes on disk (allocated blocks; links not followed; deep paths counted). */
export async function treeBytes(dir: string, opts: { timeoutMs?: number } = {}): Promise<number> {
  return (await measureTree(dir, opts)).bytes;
}

/** Whether `dir` is a mount point (per /proc/self/mountinfo). */
export async function isMountPoint(dir: string): Promise<boolean> {
  const real = await fs.realpath(dir).catch(() => null);
  if (!real) return false;
  // On another device than its parent folder: mounted, without reading the whole mount
  // table (a task's volume, the common case). The same device may still be a bind mount.
  const [st, parent] = await Promise.all([fs.stat(real), fs.stat(path.dirname(real))]).catch(() => [null, null]);
  if (st && parent && st.dev !== parent.dev) return true;
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return info.split('\n').some((line) => unescapeMount(line.split(' ')[4] ?? '') === real);
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}
