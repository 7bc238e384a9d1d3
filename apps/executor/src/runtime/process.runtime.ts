import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { promises as fs } from 'node:fs';
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

/**
 * Runs a task as a plain child process, for machines without Docker and only when
 * ALLOW_PROCESS_RUNTIME=true. It isolates little: a scrubbed environment, the
 * workspace as working directory, its own process group (killed as a whole) and the
 * timeout. The task can read what the worker's user can read and use the network.
 */
export class ProcessRuntime implements TaskRuntime {
  readonly name = 'process' as const;

  workspacePath(hostWorkspace: string): string {
    return hostWorkspace;
  }

  /** A child process cannot be reattached once its executor is gone. */
  async adopt(): Promise<null> {
    return null;
  }

  async remove(): Promise<void> {
    /* a finished process leaves nothing behind */
  }

  async start(spec: RunSpec, onOutput: OutputListener): Promise<RunningTaskHandle> {
    const child = spawn(spec.command[0], spec.command.slice(1), {
      cwd: spec.workspace,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', ...spec.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const done = new Promise<RunExit>((resolve) => {
      child.once('error', (err) => resolve({ exitCode: null, oomKilled: false, error: `the process could not start: ${err.message}` }));
      child.once('close', (code, signal) =>
        resolve({ exitCode: code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : null), oomKilled: false }),
      );
    });
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
