import { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
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
  /**
   * Processes to kill once the child is gone (its pid may then be reused), `pid:startTicks`
   * → pid: every process of the task seen (unsandboxed), or bwrap's init (bubblewrap).
   */
  private readonly seen = new Map<string, number>();
  private readonly tracker: NodeJS.Timeout;
  /** The task's pid namespace (bubblewrap), held open so that its inode is not reused. */
  private pidNs: { handle: fs.FileHandle; ino: number; dev: number } | null = null;
  private noting: Promise<void> | null = null;
  private prev: { cpu: Map<string, number>; at: number } | null = null;

  constructor(
    private readonly child: ChildProcess,
    private readonly sandboxed: boolean,
    private readonly memoryBytes: number,
  ) {
    // Unsandboxed: notes the task's processes as they come. Bubblewrap: its pid namespace.
    this.tracker = setInterval(() => {
      if (sandboxed && this.pidNs) clearInterval(this.tracker);
      else void this.taskProcs().catch(() => undefined);
    }, TRACK_MS);
    this.tracker.unref();
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
      clearInterval(this.tracker);
      await this.noting;
      await this.pidNs?.handle.close().catch(() => undefined);
      return exit;
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the child is not reaped yet: until then its pid (and group) are still its own. */
  private get childLive(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * The task's processes now. In bubblewrap: the descendants of the namespace's init
   * (bwrap's own two processes left out, the init noted). Unsandboxed: the child's tree, noted.
   */
  private async taskProcs(procs?: Map<number, ProcInfo>): Promise<ProcInfo[]> {
    const root = this.child.pid;
    if (!root || !this.childLive) return [];
    const tree = descendants(procs ?? (await readProcs()), root);
    if (this.sandboxed) {
      const inits = tree.filter((p) => p.ppid === root);
      for (const p of inits) this.seen.set(key(p), p.pid);
      if (!this.pidNs && !this.noting && inits.length) {
        this.noting = this.notePidNs(inits[0].pid).finally(() => (this.noting = null));
        await this.noting;
      }
      return tree.filter((p) => p.pid !== root && !inits.includes(p));
    }
    for (const p of tree) this.seen.set(key(p), p.pid);
    return tree;
  }

  /** Holds on to the pid namespace bwrap's init made (not ours: it may not have made it yet). */
  private async notePidNs(init: number): Promise<void> {
    const handle = await fs.open(`/proc/${init}/ns/pid`, 'r').catch(() => null);
    if (!handle) return;
    const [st, self] = await Promise.all([handle.stat(), fs.stat('/proc/self/ns/pid')]);
    if (st.ino === self.ino && st.dev === self.dev) await handle.close();
    else this.pidNs = { handle, ino: st.ino, dev: st.dev };
  }

  /** Every process in the task's pid namespace, whoever its parent is now. */
  private async inPidNs(procs: Map<number, ProcInfo>): Promise<number[]> {
    const ns = this.pidNs;
    if (!ns) return [];
    const found = await Promise.all(
      [...procs.keys()].map(async (pid) => {
        const st = await fs.stat(`/proc/${pid}/ns/pid`).catch(() => null);
        return st && st.ino === ns.ino && st.dev === ns.dev ? pid : null;
      }),
    );
    return found.filter((pid): pid is number => pid !== null);
  }

  /** Pids noted in `seen` that are still the same processes. */
  private stillSeen(procs: Map<number, ProcInfo>): number[] {
    const pids: number[] = [];
    for (const [k, pid] of this.seen) {
      const p = procs.get(pid);
      if (p && key(p) === k) pids.push(pid);
      else this.seen.delete(k);
    }
    return pids;
  }

  /** Asks every process of the task to end (SIGTERM), without touching the sandbox. */
  private async terminate(): Promise<void> {
    const procs = await readProcs();
    const task = (await this.taskProcs(procs)).map((p) => p.pid);
    if (this.sandboxed) {
      for (const pid of task) signal(pid, 'SIGTERM');
      return;
    }
    if (this.childLive) signal(-this.child.pid!, 'SIGTERM');
    for (const pid of new Set([...task, ...this.stillSeen(procs)])) signal(pid, 'SIGTERM');
  }

  /** Kills the whole run at once: in bubblewrap, its pid namespace (by its init). */
  async kill(): Promise<void> {
    const root = this.child.pid;
    if (!root) return;
    const procs = await readProcs();
    await this.taskProcs(procs);
    // In bubblewrap the init first: the kernel then kills the namespace; bwrap outside follows.
    for (const pid of this.stillSeen(procs)) signal(pid, 'SIGKILL');
    // And anything still in that namespace (held open: its id is still this task's).
    for (const pid of await this.inPidNs(procs)) signal(pid, 'SIGKILL');
    // The group (unsandboxed) while it has members: its id cannot be reused until then.
    if (!this.sandboxed && [...procs.values()].some((p) => p.pgrp === root)) signal(-root, 'SIGKILL');
    if (this.childLive) signal(root, 'SIGKILL');
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
