import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { ContainerLimits } from '@hivemind/shared/queue/queues';
import { Outcome, outcomes } from '@hivemind/shared/task-format/outcome';
import { TaskCancelled, onCancel, throwIfCancelled, withBudget } from './cancellation';
import { RedactedOutput, notFound, pipErrors, secretsOf } from './install-output';
import { checkRequirements, redactIndex } from './requirements-policy';
import { RunExit, RunSpec, TaskRuntime } from '../runtime/task-runtime.port';

/** Where the requirements are installed, inside the workspace (on the task's PYTHONPATH; never packed into the result). */
export const PACKAGES_DIR = '.hivemind-packages';
/**
 * The install step's staging folder, inside PACKAGES_DIR: the normalized requirements
 * file, the downloaded wheels and pip's temporary files. Deleted when the step ends.
 */
export const DOWNLOAD_DIR = path.join(PACKAGES_DIR, '.download');

export interface InstallContext {
  taskId: string;
  /** Host path of the task's workspace. */
  workspace: string;
  runtime: TaskRuntime;
  limits: ContainerLimits;
  /** The image the task runs in, when its hivemind.json chose one (the install runs there too). */
  image?: string;
  config: WorkerConfig;
  /** A line from the worker in the task's log. */
  note(line: string): void;
  /** Output of the install runs, for the task's log. */
  push(chunk: Buffer): void;
  /** The task's cancellation (stop, timeout, drain). */
  signal: AbortSignal;
}

const PIP = ['python3', '-I', '-u', '-m', 'pip'];
const PIP_QUIET = ['--no-cache-dir', '--disable-pip-version-check', '--no-input', '--progress-bar', 'off'];

/** The task's requirements.txt, read up to one byte past the limit; null when there is none. */
async function readRequirements(file: string, maxBytes: number): Promise<Buffer | 'not a file' | null> {
  const st = await fs.lstat(file).catch(() => null);
  if (!st) return null;
  if (!st.isFile()) return 'not a file';
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Fresh staging folders, owned so the install container's user can write them. */
async function prepare(ctx: InstallContext, text: string): Promise<void> {
  const packages = path.join(ctx.workspace, PACKAGES_DIR);
  const staging = path.join(ctx.workspace, DOWNLOAD_DIR);
  // The worker's name: whatever the task shipped under it goes.
  await fs.rm(packages, { recursive: true, force: true });
  const dirs = [packages, staging, path.join(staging, 'wheels'), path.join(staging, 'tmp')];
  for (const d of dirs) await fs.mkdir(d);
  const file = path.join(staging, 'requirements.txt');
  await fs.writeFile(file, text, { mode: 0o644 });
  const owner = ctx.runtime.workspaceOwner();
  const mode = (await fs.stat(ctx.workspace)).mode & 0o777;
  for (const p of [...dirs, file]) {
    if (owner) await fs.lchown(p, owner.uid, owner.gid);
    if (p !== file) await fs.chmod(p, mode);
  }
}

async function bytesIn(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isFile()) total += (await fs.stat(path.join(dir, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/**
 * Runs one pip command in the install container and waits for it. When `signal`
 * aborts, the container is stopped; it is removed in every case.
 */
async function runPip(ctx: InstallContext, signal: AbortSignal, spec: Omit<RunSpec, 'taskId' | 'limits' | 'entryKind' | 'phase' | 'image'>, out: RedactedOutput): Promise<RunExit> {
  throwIfCancelled(signal);
  const handle = await ctx.runtime.start(
    { ...spec, taskId: ctx.taskId, limits: ctx.limits, entryKind: 'python', phase: 'install', ...(ctx.image ? { image: ctx.image } : {}) },
    out.push,
  );
  const off = onCancel(signal, () => void handle.stop(ctx.config.STOP_GRACE_PERIOD).catch(() => undefined));
  try {
    return await handle.done;
  } finally {
    off();
    out.flush();
    await ctx.runtime.remove(ctx.taskId, 'install');
  }
}

/** Why a pip run failed, as the task's outcome; null when it worked. */
function failure(exit: RunExit, out: RedactedOutput, what: 'download' | 'install', ctx: InstallContext): Outcome | null {
  if (exit.exitCode === 0 && !exit.error) return null;
  if (exit.error) return outcomes.installFailed(exit.error);
  if (exit.oomKilled) return outcomes.installFailed(`pip ran out of memory (the task's limit of ${Math.round(ctx.limits.memoryBytes / 1048576)} MB)`);
  const missing = what === 'download' ? notFound(out.tail) : [];
  if (missing.length) {
    const index = redactIndex(ctx.config.PIP_INDEX_URL);
    const names = missing.map((m) => JSON.stringify(m)).join(', ');
    return outcomes.installFailed(
      ctx.config.REQUIREMENTS_ALLOW_SDIST
        ? `${names} not found on the package index ${index}`
        : `no wheel for ${names} on the package index ${index}: it is not there, or it has only a source distribution, which this node does not build (REQUIREMENTS_ALLOW_SDIST=false)`,
    );
  }
  return outcomes.installFailed(`pip ${what} exited with code ${exit.exitCode}: ${pipErrors(out.tail)}`);
}

/**
 * The requirements.txt step. The task's file is checked by the requirements policy
 * (requirements by name only); then pip, in the install container, (a) downloads the
 * wheels of the requirements and their dependencies from the configured index, the
 * only run with a network, with index and proxy given by environment, never argv; and
 * (b) installs them into PACKAGES_DIR with no network and no index. Neither run sees
 * the task's files; no task-supplied code runs (wheels only, unless
 * REQUIREMENTS_ALLOW_SDIST). INSTALL_TIMEOUT bounds both runs together.
 *
 * Returns null when there is nothing to install or it installed, else the outcome that
 * ends the task. When `ctx.signal` aborts, the running container is stopped and
 * removed and `ctx.signal.reason` is thrown.
 */
export async function installRequirements(ctx: InstallContext): Promise<Outcome | null> {
  const c = ctx.config;
  throwIfCancelled(ctx.signal);
  if (!c.REQUIREMENTS_INSTALL) return null;
  const content = await readRequirements(path.join(ctx.workspace, 'requirements.txt'), c.REQUIREMENTS_MAX_KB * 1024);
  if (content === null) return null;
  const check =
    content === 'not a file'
      ? ({ ok: false, reason: 'it is not a regular file' } as const)
      : checkRequirements(content, { maxBytes: c.REQUIREMENTS_MAX_KB * 1024, maxLines: c.REQUIREMENTS_MAX_LINES });
  if (!check.ok) {
    ctx.note(`requirements.txt refused: ${check.reason}`);
    return outcomes.installRefused(check.reason);
  }
  if (!check.requirements.length) {
    ctx.note('requirements.txt lists no requirements: nothing to install');
    return null;
  }
  const index = redactIndex(c.PIP_INDEX_URL);
  const out = new RedactedOutput([...secretsOf(c.PIP_INDEX_URL), ...secretsOf(c.PIP_PROXY)], ctx.push);
  const budget = withBudget(ctx.signal, c.INSTALL_TIMEOUT * 1000, () => outcomes.timedOut(c.INSTALL_TIMEOUT, 'INSTALL_TIMEOUT'));
  const wheelsOnly = !c.REQUIREMENTS_ALLOW_SDIST;
  const binary = wheelsOnly ? ['--only-binary=:all:'] : ['--no-build-isolation'];
  const staging = path.join(ctx.workspace, DOWNLOAD_DIR);
  try {
    await prepare(ctx, check.text);
    // Each run sees one folder as its workspace: the staging folder (download), the packages folder (install).
    const stage = ctx.runtime.workspacePath(staging);
    const packages = ctx.runtime.workspacePath(path.join(ctx.workspace, PACKAGES_DIR));
    const inPackages = (p: string) => path.posix.join(packages, path.relative(PACKAGES_DIR, p).split(path.sep).join('/'));
    const env = (tmp: string) => ({ HOME: '/tmp', TMPDIR: tmp, LANG: 'C.UTF-8', PIP_CONFIG_FILE: '/dev/null', PIP_ROOT_USER_ACTION: 'ignore' });
    const trusted = (c.PIP_TRUSTED_HOST ?? '').split(',').map((h) => h.trim()).filter(Boolean);
    const proxy = c.PIP_PROXY ? ` through the proxy ${redactIndex(c.PIP_PROXY)}` : '';
    ctx.note(
      `installing requirements.txt: ${check.requirements.length} requirement(s), ${wheelsOnly ? 'wheels only' : 'wheels or source distributions'}, ` +
        `downloaded from the package index ${index}${proxy}, then installed without network`,
    );
    // (a) Download, with the network: index, trusted hosts and proxy from the environment.
    const download = await runPip(ctx, budget.signal, {
      workspace: staging,
      command: [...PIP, 'download', ...PIP_QUIET, ...binary, '--dest', path.posix.join(stage, 'wheels'), '--requirement', path.posix.join(stage, 'requirements.txt')],
      env: {
        ...env(path.posix.join(stage, 'tmp')),
        ...(c.PIP_INDEX_URL ? { PIP_INDEX_URL: c.PIP_INDEX_URL } : {}),
        ...(trusted.length ? { PIP_TRUSTED_HOST: trusted.join(' ') } : {}),
        ...(c.PIP_PROXY ? { PIP_PROXY: c.PIP_PROXY } : {}),
      },
      network: true,
    }, out);
    const cancelled = () => {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      return budget.signal.aborted ? (budget.signal.reason as TaskCancelled).outcome : null;
    };
    const failedDownload = cancelled() ?? failure(download, out, 'download', ctx);
    if (failedDownload) return failedDownload;
    const size = await bytesIn(path.join(staging, 'wheels'));
    if (size > c.workspaceQuotaBytes) {
      return outcomes.stepOverBudget('install', `the downloaded packages take ${Math.round(size / 1048576)} MB, more than the workspace quota of ${Math.round(c.workspaceQuotaBytes / 1048576)} MB`);
    }
    ctx.note('requirements downloaded; installing them without network');
    // (b) Install, offline, from the downloaded files only.
    const wheels = path.posix.join(inPackages(DOWNLOAD_DIR), 'wheels');
    const requirements = path.posix.join(inPackages(DOWNLOAD_DIR), 'requirements.txt');
    const install = await runPip(ctx, budget.signal, {
      workspace: path.join(ctx.workspace, PACKAGES_DIR),
      command: [...PIP, 'install', ...PIP_QUIET, ...binary, '--no-index', '--find-links', wheels, '--target', packages, '--requirement', requirements],
      env: env(path.posix.join(inPackages(DOWNLOAD_DIR), 'tmp')),
      network: false,
    }, out);
    const failedInstall = cancelled() ?? failure(install, out, 'install', ctx);
    if (failedInstall) return failedInstall;
    ctx.note('requirements installed');
    return null;
  } finally {
    budget.done();
    await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
  }
}
