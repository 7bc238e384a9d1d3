import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';

/**
 * Removing what tests and benchmarks make on the host: containers, mounts, loop
 * devices, processes and folders. Every step tolerates what is already gone and
 * carries on past what it cannot remove, returning what it found, so clean-up
 * after a failed or timed-out test does as much as it can.
 */

const run = promisify(execFile);

/** Labels of the worker's containers (as apps/executor/src/runtime/docker.runtime.ts sets them). */
export const LABEL_MANAGED = 'io.hivemind.managed';
export const LABEL_INSTANCE = 'io.hivemind.instance';

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Every mount point, from /proc/self/mountinfo. */
export function mountPoints(): string[] {
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return info
    .split('\n')
    .filter(Boolean)
    .map((line) => unescapeMount(line.split(' ')[4] ?? ''));
}

const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** Mount points at or below `dir`, deepest first (the order they must be unmounted in). */
export function mountsUnder(dir: string): string[] {
  return [...new Set(mountPoints().filter((m) => under(m, dir)))].sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or below `dir` (lazily where busy). Returns what it unmounted. */
export async function unmountAll(dir: string): Promise<string[]> {
  const done: string[] = [];
  // A folder can hold several stacked mounts: go round until none is left (bounded).
  for (let round = 0; round < 5; round++) {
    const mounts = mountsUnder(dir);
    if (!mounts.length) break;
    for (const m of mounts) {
      const ok = await run('umount', [m], { timeout: 30_000 }).then(
        () => true,
        () => run('umount', ['-l', m], { timeout: 30_000 }).then(() => true, () => false),
      );
      if (ok && !done.includes(m)) done.push(m);
    }
  }
  return done;
}

/** Loop devices whose backing file lies at or below `dir` (also after the file was deleted). */
export function loopDevicesUnder(dir: string): { device: string; file: string }[] {
  const found: { device: string; file: string }[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/sys/block');
  } catch {
    return found;
  }
  for (const name of names.filter((n) => /^loop\d+$/.test(n))) {
    try {
      const file = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim().replace(/ \(deleted\)$/, '');
      if (under(file, dir)) found.push({ device: `/dev/${name}`, file });
    } catch {
      // not bound to a file
    }
  }
  return found;
}

/** Detaches the loop devices backed by files under `dir`. Returns the devices it detached. */
export async function detachLoops(dir: string): Promise<string[]> {
  const done: string[] = [];
  for (const { device } of loopDevicesUnder(dir)) {
    if (await run('losetup', ['-d', device], { timeout: 30_000 }).then(() => true, () => false)) done.push(device);
  }
  return done;
}

/** Processes whose command line names something at or below `dir` (a private dockerd, its shims). */
export function processesUnder(dir: string): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return found;
  }
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (args.some((a) => a.split(/[=,]/).some((part) => under(part.replace(/^unix:\/\//, ''), dir)))) found.push({ pid, cmd: args.join(' ').slice(0, 200) });
    } catch {
      // gone
    }
  }
  return found;
}

/** Kills (by pid) the processes that name `dir`: SIGTERM, then SIGKILL after `graceMs`. */
export async function killProcessesUnder(dir: string, graceMs = 5_000): Promise<string[]> {
  const procs = processesUnder(dir);
  for (const { pid } of procs) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && procs.some(({ pid }) => existsSync(`/proc/${pid}`))) await new Promise((r) => setTimeout(r, 100));
  for (const { pid } of procs) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  return procs.map((p) => `${p.pid} ${p.cmd}`);
}

/** Removes containers matching `filters` (forced). Returns their names. */
export async function removeContainers(docker: Docker, filters: Record<string, string[]>, match: (c: Docker.ContainerInfo) => boolean = () => true): Promise<string[]> {
  const all = await docker.listContainers({ all: true, filters }).catch(() => [] as Docker.ContainerInfo[]);
  const ours = all.filter(match);
  await Promise.all(ours.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
  return ours.map((c) => `${c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12)} (${c.Image}, ${c.State})`);
}

/**
 * Removes a folder the test made and everything it put on the host beneath it:
 * processes naming it, mounts (lazily where busy), loop devices, then the tree
 * (made writable first: a task may leave mode-000 folders; kept with `keepFiles`).
 * Returns what it had to remove besides the folder itself.
 */
export async function removeTree(dir: string, opts: { keepFiles?: boolean } = {}): Promise<string[]> {
  const left: string[] = [];
  left.push(...(await killProcessesUnder(dir)).map((p) => `process ${p}`));
  left.push(...(await unmountAll(dir)).map((m) => `mount ${m}`));
  left.push(...(await detachLoops(dir)).map((d) => `loop device ${d}`));
  if (existsSync(dir) && !opts.keepFiles) {
    await run('chmod', ['-R', 'u+rwx', dir], { timeout: 60_000 }).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  }
  return left;
}

// --- temporary folders of a test file ---------------------------------------------------

const tempDirs = new Set<string>();

/**
 * A new folder under os.tmpdir() (named `<prefix>XXXXXX`), removed with whatever is
 * mounted in it when the test file ends (jest-setup), or by the global teardown if the
 * file's worker died first.
 */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  recordDir(dir);
  tempDirs.add(dir);
  return dir;
}

/** Removes the folders makeTempDir made (at the end of each test file). */
export async function removeTempDirs(): Promise<void> {
  const dirs = [...tempDirs];
  tempDirs.clear();
  const keepFiles = process.env.HM_KEEP_TEST_DIRS === '1';
  await Promise.all(dirs.map((d) => removeTree(d, { keepFiles })));
}

// --- the run's manifest ----------------------------------------------------------------
// Jest runs test files in worker processes; what they make on the host is written to a
// file of the run's own, so the global teardown can find what a crashed worker left.

export const RUNS_DIR = path.join(os.tmpdir(), 'hm-test-runs');

/** This run's id (set by the global setup), or '' outside jest (benchmarks). */
export const runId = (): string => process.env.HM_TEST_RUN ?? '';

export function manifestFile(run = runId()): string {
  return path.join(RUNS_DIR, `${run}.dirs`);
}

/** Records a folder this run made on the host (no-op outside a jest run). */
export function recordDir(dir: string): void {
  if (!runId()) return;
  try {
    mkdirSync(RUNS_DIR, { recursive: true });
    appendFileSync(manifestFile(), `${dir}\n`);
  } catch {
    // the teardown then finds it by its mounts only
  }
}

export function recordedDirs(run = runId()): string[] {
  try {
    return [...new Set(readFileSync(manifestFile(run), 'utf8').split('\n').filter(Boolean))];
  } catch {
    return [];
  }
}

export interface RunState {
  pid: number;
  started: number;
  /** Mount points under os.tmpdir()/hm-* when the run started. */
  mounts: string[];
  /** Docker networks named hm-* when the run started. */
  networks: string[];
}

export function writeRunState(run: string, state: RunState): void {
  mkdirSync(RUNS_DIR, { recursive: true });
  writeFileSync(path.join(RUNS_DIR, `${run}.json`), JSON.stringify(state));
}

export function readRunState(run: string): RunState | null {
  try {
    return JSON.parse(readFileSync(path.join(RUNS_DIR, `${run}.json`), 'utf8')) as RunState;
  } catch {
    return null;
  }
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** Whether `pid` is this process, one of its descendants (jest's workers) or ancestors (npx, sh). */
function isOurs(pid: number): boolean {
  for (let p = pid, i = 0; p > 1 && i < 64; p = parentOf(p), i++) if (p === process.pid) return true;
  for (let p = parentOf(process.pid), i = 0; p > 1 && i < 64; p = parentOf(p), i++) if (p === pid) return true;
  return false;
}

/**
 * Other jest runs on this machine that are still going: those that noted themselves in
 * RUNS_DIR, and any other jest process (a run of a checkout without that note).
 */
export function otherLiveRuns(run: string): { run: string; pid: number }[] {
  let files: string[] = [];
  try {
    files = readdirSync(RUNS_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    // none noted
  }
  const noted = files
    .map((f) => f.slice(0, -'.json'.length))
    .filter((r) => r !== run)
    .map((r) => ({ run: r, pid: readRunState(r)?.pid ?? 0 }))
    .filter(({ pid }) => pid > 0 && existsSync(`/proc/${pid}`));
  const jests: { run: string; pid: number }[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    const pid = Number(p);
    if (isOurs(pid) || noted.some((n) => n.pid === pid)) continue;
    try {
      const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => /(^|\/)jest(\.js)?$|jest-worker|jest\/bin/.test(a))) jests.push({ run: '(unnoted)', pid });
    } catch {
      // gone
    }
  }
  return [...noted, ...jests];
}

/** Mount points under os.tmpdir()/hm-* (where the tests make their folders). */
export function testMounts(): string[] {
  const tmp = os.tmpdir();
  return mountPoints().filter((m) => m.startsWith(`${tmp}/hm-`));
}

/** Docker networks named hm-* (the tests' own networks). */
export function testNetworks(): string[] {
  try {
    return execFileSync('docker', ['network', 'ls', '--format', '{{.Name}}'], { encoding: 'utf8' })
      .split('\n')
      .filter((n) => n.startsWith('hm-'));
  } catch {
    return [];
  }
}
