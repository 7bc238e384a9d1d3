import { ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { descendants, ProcInfo, readProcs, signal, sysconf } from './proc-tree';
import { RunExit, RunningTaskHandle, Usage } from './task-runtime.port';

/** How long `done` waits for the output pipes once the task's processes are gone. */
const PIPE_GRACE_MS = 2000;
/** How often an unsandboxed run notes its processes (they may be orphaned later). */
const TRACK_MS = 250;

const key = (p: ProcInfo) => `${p.pid}:${p.startTicks}`;

/**
 * One task running as a child process, and everything the executor does to it.
 *
 * In bubblewrap (`bwrap`), the child is bwrap itself; its only child is bwrap's init,
 * pid 1 of the task's pid namespace, and everything below that is the task. Killing
 * that init (or the task's top process ending, which ends the init) makes the kernel
 * kill every process in the namespace: nothing the task forks, setsid() included,
 * survives it. Without a sandbox (`none`, forced only), the process group and every
 * descendant ever seen are killed: a process that escapes between two looks survives.
 */
export class ProcessRun {
  readonly done: Promise<RunExit>;
  readonly startedAt = Date.now();
  /** Processes of the task seen so far, `pid:startTicks` → pid (unsandboxed runs). */
  private readonly seen = new Map<string, number>();
  private readonly tracker: NodeJS.Timeout | null = null;
  private prev: { cpu: Map<string, number>; at: number } | null = null;

  constructor(
    private readonly child: ChildProcess,
    private readonly sandboxed: boolean,
    private readonly memoryBytes: number,
  ) {
    if (!sandboxed) {
      this.tracker = setInterval(() => void this.taskProcs().catch(() => undefined), TRACK_MS);
      this.tracker.unref();
    }
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const ended = new Promise<RunExit>((resolve) => {
      child.once('error', (err) => resolve({ exitCode: null, oomKilled: false, error: `the process could not start: ${err.message}` }));
      child.once('exit', (code, sig) => resolve({ exitCode: code ?? (sig ? 128 + (osConstants.signals[sig] ?? 0) : null), oomKilled: false }));
    });
    this.done = ended.then(async (exit) => {
      // The top process ended: so does the rest of the task, whatever holds its output.
      await this.kill();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, PIPE_GRACE_MS)))]);
      clearTimeout(timer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      if (this.tracker) clearInterval(this.tracker);
      return exit;
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * The task's processes now. In bubblewrap: the descendants of the namespace's init
   * (bwrap's own two processes left out). Unsandboxed: the child's tree, noted in `seen`.
   */
  private async taskProcs(): Promise<ProcInfo[]> {
    const root = this.child.pid;
    if (!root) return [];
    const tree = descendants(await readProcs(), root);
    if (this.sandboxed) {
      const inits = new Set(tree.filter((p) => p.ppid === root).map((p) => p.pid));
      return tree.filter((p) => p.pid !== root && !inits.has(p.pid));
    }
    for (const p of tree) this.seen.set(key(p), p.pid);
    return tree;
  }

  /** Every process of the run, now and (unsandboxed) seen before, still the same process. */
  private async everyProcess(): Promise<number[]> {
    const procs = await readProcs();
    const root = this.child.pid;
    const pids = new Set(root ? descendants(procs, root).map((p) => p.pid) : []);
    for (const [k, pid] of this.seen) {
      const p = procs.get(pid);
      if (p && key(p) === k) pids.add(pid);
      else this.seen.delete(k);
    }
    return [...pids];
  }

  /** Asks every process of the task to end (SIGTERM), without touching the sandbox. */
  private async terminate(): Promise<void> {
    if (!this.sandboxed && this.child.pid) signal(-this.child.pid, 'SIGTERM');
    const pids = this.sandboxed ? (await this.taskProcs()).map((p) => p.pid) : await this.everyProcess();
    for (const pid of pids) signal(pid, 'SIGTERM');
  }

  /** Kills the whole run at once: in bubblewrap, its pid namespace (by its init). */
  async kill(): Promise<void> {
    const root = this.child.pid;
    if (!root) return;
    const procs = await readProcs();
    if (this.sandboxed) {
      // The init first: the kernel then kills the namespace; bwrap outside follows.
      for (const p of procs.values()) if (p.ppid === root) signal(p.pid, 'SIGKILL');
      signal(root, 'SIGKILL');
      return;
    }
    signal(-root, 'SIGKILL');
    for (const pid of await this.everyProcess()) signal(pid, 'SIGKILL');
  }

  handle(): RunningTaskHandle {
    return {
      done: this.done,
      startedAt: this.startedAt,
      stop: async (graceSec: number) => {
        if (graceSec <= 0) return this.kill();
        await this.terminate();
        const timer = setTimeout(() => void this.kill(), graceSec * 1000);
        void this.done.then(() => clearTimeout(timer));
      },
      usage: () => this.usage(),
    };
  }

  /** CPU and resident memory summed over every process of the task. */
  private async usage(): Promise<Usage | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return null;
    const procs = await this.taskProcs();
    const { clkTck, pageSize } = sysconf();
    const now = Date.now();
    const cpu = new Map<string, number>();
    let ticks = 0;
    let rss = 0;
    for (const p of procs) {
      cpu.set(key(p), p.cpuTicks);
      // A process new since the last look used all its CPU time since then.
      ticks += Math.max(0, p.cpuTicks - (this.prev?.cpu.get(key(p)) ?? 0));
      rss += p.rssPages * pageSize;
    }
    const cpuPercent = this.prev && now > this.prev.at ? (100 * ticks * 1000) / clkTck / (now - this.prev.at) : 0;
    this.prev = { cpu, at: now };
    return { cpuPercent, memoryBytes: rss, memoryPercent: this.memoryBytes ? (100 * rss) / this.memoryBytes : 0 };
  }
}
