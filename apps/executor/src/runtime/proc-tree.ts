import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';

/** One process as /proc/<pid>/stat shows it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Its process group. */
  pgrp: number;
  /** When it started, in clock ticks since boot: with the pid, names it across pid reuse. */
  startTicks: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  rssPages: number;
}

let sys: { clkTck: number; pageSize: number } | null = null;

function getconf(name: string, fallback: number): number {
  try {
    const v = Number(execFileSync('getconf', [name], { encoding: 'utf8', timeout: 5000 }).trim());
    return Number.isFinite(v) && v > 0 ? v : fallback;
  } catch {
    return fallback;
  }
}

/** The kernel's clock tick and page size (`getconf CLK_TCK`, `getconf PAGESIZE`), read once. */
export function sysconf(): { clkTck: number; pageSize: number } {
  sys ??= { clkTck: getconf('CLK_TCK', 100), pageSize: getconf('PAGESIZE', 4096) };
  return sys;
}

/** Parses /proc/<pid>/stat (the command name may hold spaces and parentheses). */
export function parseStat(pid: number, stat: string): ProcInfo | null {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields.length < 22) return null;
  return {
    pid,
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    startTicks: Number(fields[19]),
    rssPages: Number(fields[21]),
  };
}

/** Every process this executor can see now, by pid. */
export async function readProcs(): Promise<Map<number, ProcInfo>> {
  const names = await fs.readdir('/proc').catch(() => [] as string[]);
  const infos = await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n))
      .map(async (n) => {
        const stat = await fs.readFile(`/proc/${n}/stat`, 'utf8').catch(() => null);
        return stat ? parseStat(Number(n), stat) : null;
      }),
  );
  return new Map(infos.filter((p): p is ProcInfo => p !== null).map((p) => [p.pid, p]));
}

/** `root` and all its descendants (by parent pid), root first; empty when root is gone. */
export function descendants(procs: Map<number, ProcInfo>, root: number): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs.values()) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const top = procs.get(root);
  if (!top) return [];
  const out: ProcInfo[] = [];
  const queue = [top];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}
