import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OutputListener, RunExit, RunningTaskHandle, RunSpec, TaskRuntime, Usage } from './task-runtime.port';

const CLK_TCK = 100;
const PAGE = 4096;

/** CPU seconds and resident bytes of one process, from /proc. */
async function procUsage(pid: number): Promise<{ cpuSec: number; rss: number } | null> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { cpuSec: (utime + stime) / CLK_TCK, rss: rssPages * PAGE };
  } catch {
    return null;
  }
}

export interface ProcessRuntimeOptions {
  /** `bwrap`: inside bubblewrap; `none`: rlimits, a scrubbed environment and a private folder only. */
  sandbox: 'bwrap' | 'none';
  /**
   * TASK_USER, when the executor is root. With bwrap the task has this uid inside its
   * user namespace (root without capabilities outside); without, the process runs as it.
   */
  user?: { uid: number; gid: number };
  /** Most processes (RLIMIT_NPROC, counted per user). */
  pidsLimit?: number;
  /** Largest file the task may write (RLIMIT_FSIZE). */
  maxFileBytes?: number;
}

/** Whether bubblewrap is installed and can make a sandbox here (user namespaces allowed). */
export async function bwrapWorks(): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('bwrap', ['--unshare-all', '--die-with-parent', '--ro-bind', '/usr', '/usr', '--ro-bind-try', '/lib', '/lib', '--ro-bind-try', '/lib64', '/lib64', '--ro-bind-try', '/bin', '/bin', '--', '/bin/true'], {
      stdio: 'ignore',
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.once('error', () => resolve(false));
    p.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

/** The host paths a bubblewrapped task sees, all read-only: the system's programs and libraries. */
const BWRAP_RO = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/etc/alternatives', '/etc/ssl', '/etc/ld.so.cache', '/etc/localtime'];

/**
 * Runs a task as a child process, for machines without Docker and only when
 * ALLOW_PROCESS_RUNTIME=true. As isolated as the host allows:
 * - `bwrap` (bubblewrap installed): new user, pid, network (loopback only), IPC, UTS and
 *   cgroup namespaces; only the system's program folders, read-only, plus the workspace
 *   (read-write), a private /tmp, /proc and a minimal /dev; it dies with the executor.
 * - `none`: a private temporary folder as HOME/TMPDIR, no other sandbox.
 * Both: rlimits (processes, file size, no core dumps), a scrubbed environment, the
 * workspace as working directory, TASK_USER when the executor is root, its own process
 * group killed as a whole on stop or timeout.
 */
export class ProcessRuntime implements TaskRuntime {
  readonly name = 'process' as const;

  constructor(private readonly opts: ProcessRuntimeOptions = { sandbox: 'none' }) {}

  get sandbox(): 'bwrap' | 'none' {
    return this.opts.sandbox;
  }

  workspacePath(hostWorkspace: string): string {
    return hostWorkspace;
  }

  workspaceOwner(): { uid: number; gid: number } | null {
    return this.opts.sandbox === 'none' && this.opts.user ? this.opts.user : null;
  }

  /** A child process cannot be reattached once its executor is gone. */
  async adopt(): Promise<null> {
    return null;
  }

  async remove(): Promise<void> {
    /* a finished process leaves nothing behind */
  }

  /** The argv that runs `spec.command` under the chosen sandbox and rlimits. */
  commandLine(spec: RunSpec, privateTmp: string | null): string[] {
    const limits = ['prlimit', '--core=0', '--nofile=4096'];
    if (this.opts.pidsLimit) limits.push(`--nproc=${this.opts.pidsLimit}`);
    if (this.opts.maxFileBytes) limits.push(`--fsize=${this.opts.maxFileBytes}`);
    limits.push('--');
    if (this.opts.sandbox !== 'bwrap') return [...limits, ...spec.command];
    const args = ['bwrap', '--unshare-all', '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
    if (this.opts.user) args.push('--unshare-user', '--uid', String(this.opts.user.uid), '--gid', String(this.opts.user.gid));
    // The install step may fetch packages: it keeps the host's network and DNS setup.
    if (spec.network) args.push('--share-net', '--ro-bind-try', '/etc/resolv.conf', '/etc/resolv.conf', '--ro-bind-try', '/etc/hosts', '/etc/hosts');
    for (const p of BWRAP_RO) args.push('--ro-bind-try', p, p);
    args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--bind', spec.workspace, spec.workspace, '--remount-ro', '/', '--chdir', spec.workspace, '--clearenv');
    for (const [k, v] of Object.entries(this.env(spec, privateTmp))) args.push('--setenv', k, v);
    return [...args, '--', ...limits, ...spec.command];
  }

  private env(spec: RunSpec, privateTmp: string | null): Record<string, string> {
    const home = privateTmp ?? '/tmp';
    return { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', ...spec.env, HOME: home, TMPDIR: home };
  }

  async start(spec: RunSpec, onOutput: OutputListener): Promise<RunningTaskHandle> {
    let privateTmp: string | null = null;
    if (this.opts.sandbox !== 'bwrap') {
      privateTmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hivemind-task-'));
      await fs.chmod(privateTmp, 0o700);
      if (this.opts.user) await fs.chown(privateTmp, this.opts.user.uid, this.opts.user.gid);
    }
    const argv = this.commandLine(spec, privateTmp);
    const child = spawn(argv[0], argv.slice(1), {
      cwd: spec.workspace,
      env: this.env(spec, privateTmp),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.opts.user && this.opts.sandbox === 'none' ? { uid: this.opts.user.uid, gid: this.opts.user.gid } : {}),
    });
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const done = new Promise<RunExit>((resolve) => {
      child.once('error', (err) => resolve({ exitCode: null, oomKilled: false, error: `the process could not start: ${err.message}` }));
      child.once('close', (code, signal) =>
        resolve({ exitCode: code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : null), oomKilled: false }),
      );
    }).finally(() => (privateTmp ? fs.rm(privateTmp, { recursive: true, force: true }).catch(() => undefined) : undefined));
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        /* already gone */
      }
    };
    let prev: { cpuSec: number; at: number } | null = null;
    return {
      done,
      startedAt: Date.now(),
      stop: async (graceSec: number) => {
        killGroup('SIGTERM');
        const timer = setTimeout(() => killGroup('SIGKILL'), graceSec * 1000);
        void done.then(() => clearTimeout(timer));
      },
      usage: async (): Promise<Usage | null> => {
        if (!child.pid) return null;
        const u = await procUsage(child.pid);
        if (!u) return null;
        const now = Date.now();
        const cpuPercent = prev && now > prev.at ? (100 * (u.cpuSec - prev.cpuSec) * 1000) / (now - prev.at) : 0;
        prev = { cpuSec: u.cpuSec, at: now };
        return { cpuPercent: Math.max(0, cpuPercent), memoryBytes: u.rss, memoryPercent: (100 * u.rss) / spec.limits.memoryBytes };
      },
    };
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return osConstants.signals[sig];
}
