import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProcessRun } from './process-run';
import { ManagedRun, OutputListener, RunningTaskHandle, RunPhase, RunSpec, TaskRuntime } from './task-runtime.port';

export interface ProcessRuntimeOptions {
  /**
   * `bwrap`: inside bubblewrap, in its own pid namespace. `none` (only when forced:
   * PROCESS_SANDBOX_FORCE_NONE): rlimits, a scrubbed environment and a private folder only.
   */
  sandbox: 'bwrap' | 'none';
  /**
   * TASK_USER, when the executor is root. With bwrap the task has this uid inside its
   * user namespace (root without capabilities outside); without, the process runs as it.
   */
  user?: { uid: number; gid: number };
  /** Most processes (RLIMIT_NPROC, counted per user). */
  pidsLimit?: number;
  /** Largest file a run may write (RLIMIT_FSIZE) when its RunSpec sets none. */
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
 *   The pid namespace holds the task: when its top process ends, or it is stopped,
 *   every process in it is killed (see ProcessRun).
 * - `none` (forced only): a private temporary folder as HOME/TMPDIR, no other sandbox.
 * Both: rlimits (processes, file size, no core dumps), a scrubbed environment, the
 * workspace as working directory, TASK_USER when the executor is root. No GPUs, no pausing.
 */
export class ProcessRuntime implements TaskRuntime {
  readonly name = 'process' as const;
  readonly supportsGpu = false;
  readonly supportsPause = false;
  /** Runs still going, by id (the child's pid). */
  private readonly runs = new Map<string, { taskId: string; phase: RunPhase; run: ProcessRun }>();

  constructor(private readonly opts: ProcessRuntimeOptions) {}

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

  /** A process cannot be frozen here: it keeps running. */
  async setPaused(): Promise<boolean> {
    return false;
  }

  async isPaused(): Promise<boolean> {
    return false;
  }

  /** The runs of this executor still going (a crashed executor's died with it). */
  async listManaged(): Promise<ManagedRun[]> {
    return [...this.runs].map(([id, r]) => ({ id, taskId: r.taskId, phase: r.phase, running: true }));
  }

  async removeManaged(id: string): Promise<void> {
    await this.runs.get(id)?.run.kill();
  }

  async removeUnusedImages(): Promise<string[]> {
    return [];
  }

  /** The argv that runs `spec.command` under the chosen sandbox and rlimits. */
  commandLine(spec: RunSpec, privateTmp: string | null): string[] {
    const limits = ['prlimit', '--core=0', '--nofile=4096'];
    if (this.opts.pidsLimit) limits.push(`--nproc=${this.opts.pidsLimit}`);
    const fsize = spec.maxFileBytes ?? this.opts.maxFileBytes;
    if (fsize !== undefined) limits.push(`--fsize=${Math.max(0, Math.floor(fsize))}`);
    limits.push('--');
    if (this.opts.sandbox !== 'bwrap') return [...limits, ...spec.command];
    // --unshare-pid (in --unshare-all) without --as-pid-1: bwrap's init is pid 1, and its
    // end (the task's top process ended, or it was killed) kills the whole namespace.
    const args = ['bwrap', '--unshare-all', '--unshare-pid', '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
    if (this.opts.user) args.push('--unshare-user', '--uid', String(this.opts.user.uid), '--gid', String(this.opts.user.gid));
    // A run that may fetch packages (the install step) keeps the host's network and DNS setup.
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
    const run = new ProcessRun(child, this.opts.sandbox === 'bwrap', spec.limits.memoryBytes);
    const id = String(child.pid ?? `${spec.taskId}-${Date.now()}`);
    this.runs.set(id, { taskId: spec.taskId, phase: spec.phase ?? 'task', run });
    void run.done.finally(() => {
      this.runs.delete(id);
      if (privateTmp) void fs.rm(privateTmp, { recursive: true, force: true }).catch(() => undefined);
    });
    return run.handle();
  }
}
