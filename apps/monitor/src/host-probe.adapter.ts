import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as si from 'systeminformation';
import { GpuSample } from '@hivemind/shared/state/monitor-samples';

export interface NetCounters {
  rx: number;
  tx: number;
  at: number;
}

/** Sums received/sent bytes over every interface but loopback, from /proc/net/dev. */
export function parseProcNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1].trim() === 'lo') continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    rx += f[0] || 0;
    tx += f[8] || 0;
  }
  return { rx, tx };
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}

/**
 * Reads the host cheaply. systeminformation's cpu(), graphics(), fsSize() and
 * networkStats() spawn child processes, so the static facts are read once at start,
 * CPU and memory come from si.currentLoad()/si.mem() (which read /proc), disk from
 * statfs and network from /proc/net/dev. nvidia-smi runs only when an NVIDIA GPU was
 * found, always with a timeout so a hung driver cannot hang the monitor.
 */
export class HostProbe {
  private nvidia = false;

  /** Finds the GPUs; with cpuOnly (CPU_ONLY) it does not look. */
  async init(cpuOnly = false): Promise<{ gpus: string[] }> {
    if (cpuOnly) return { gpus: [] };
    try {
      const out = await run('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], 5000);
      const names = out.split('\n').map((s) => s.trim()).filter(Boolean);
      this.nvidia = names.length > 0;
      return { gpus: names };
    } catch {
      return { gpus: [] };
    }
  }

  async cpuPercent(): Promise<number> {
    return (await si.currentLoad()).currentLoad;
  }

  async memory(): Promise<{ used: number; total: number }> {
    const m = await si.mem();
    return { used: m.active, total: m.total };
  }

  async disk(dir: string): Promise<{ free: number; total: number }> {
    const s = await fs.statfs(dir);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
  }

  async net(): Promise<NetCounters | null> {
    try {
      return { ...parseProcNetDev(await fs.readFile('/proc/net/dev', 'utf8')), at: Date.now() };
    } catch {
      return null;
    }
  }

  async gpus(): Promise<GpuSample[]> {
    if (!this.nvidia) return [];
    try {
      const out = await run(
        'nvidia-smi',
        ['--query-gpu=name,utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits'],
        3000,
      );
      return out
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => {
          const [name, util, used, total] = l.split(',').map((s) => s.trim());
          return { name, utilizationPercent: Number(util) || 0, memoryUsedMb: Number(used) || 0, memoryTotalMb: Number(total) || 0 };
        });
    } catch {
      return [];
    }
  }
}
