import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** What a container's cgroup says of it: CPU time used so far, memory in use, its memory limit. */
export interface CgroupSample {
  cpuNs: number;
  /** Memory in use less the inactive page cache (as `docker stats` counts it). */
  memoryBytes: number;
  /** The cgroup's memory limit; null when it has none. */
  limitBytes: number | null;
}

/** Where a layout keeps a container's files, relative to the cgroup root. */
interface Layout {
  v2: boolean;
  cpu: (id: string) => string;
  memory: (id: string) => string;
}

const v1 = (cpuDir: string, scope: (id: string) => string): Layout => ({ v2: false, cpu: (id) => path.join(cpuDir, scope(id)), memory: (id) => path.join('memory', scope(id)) });
const v2 = (scope: (id: string) => string): Layout => ({ v2: true, cpu: scope, memory: scope });
const cgroupfs = (id: string) => path.join('docker', id);
const systemd = (id: string) => path.join('system.slice', `docker-${id}.scope`);

/**
 * The layouts of the Docker daemon's default cgroup parents: cgroup v1 (cpuacct mounted
 * alone or as `cpu,cpuacct`) and v2, with the cgroupfs driver (`docker/<id>`) or the
 * systemd one (`system.slice/docker-<id>.scope`).
 */
const LAYOUTS: Layout[] = [
  v1('cpu,cpuacct', cgroupfs),
  v1('cpuacct', cgroupfs),
  v1('cpu,cpuacct', systemd),
  v1('cpuacct', systemd),
  v2(systemd),
  v2(cgroupfs),
];

const num = (text: string): number | null => {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : null;
};
const statField = (text: string, key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);

/**
 * Reads a running container's usage from its cgroup files rather than the Engine API's
 * stats (which costs the daemon far more). The first layout that has the container's
 * files is remembered. Null when none has them (a custom cgroup parent, another
 * cgroup namespace, the container gone): the caller asks the Engine API instead.
 */
export class CgroupUsage {
  private layout: Layout | null = null;

  constructor(private readonly root = '/sys/fs/cgroup') {}

  async read(containerId: string): Promise<CgroupSample | null> {
    if (!/^[0-9a-f]{64}$/.test(containerId)) return null;
    if (this.layout) {
      const s = await this.readWith(this.layout, containerId);
      if (s) return s;
    }
    for (const layout of LAYOUTS) {
      if (layout === this.layout) continue;
      const s = await this.readWith(layout, containerId);
      if (s) {
        this.layout = layout;
        return s;
      }
    }
    return null;
  }

  private async readWith(l: Layout, id: string): Promise<CgroupSample | null> {
    const file = (dir: string, name: string) => fs.readFile(path.join(this.root, dir, name), 'utf8');
    try {
      if (l.v2) {
        const dir = l.cpu(id);
        const [cpu, current, stat, max] = await Promise.all([file(dir, 'cpu.stat'), file(dir, 'memory.current'), file(dir, 'memory.stat'), file(dir, 'memory.max')]);
        const used = num(current);
        if (used === null) return null;
        return { cpuNs: statField(cpu, 'usage_usec') * 1000, memoryBytes: Math.max(0, used - statField(stat, 'inactive_file')), limitBytes: num(max) };
      }
      const [cpu, usage, stat, limit] = await Promise.all([
        file(l.cpu(id), 'cpuacct.usage'),
        file(l.memory(id), 'memory.usage_in_bytes'),
        file(l.memory(id), 'memory.stat'),
        file(l.memory(id), 'memory.limit_in_bytes'),
      ]);
      const cpuNs = num(cpu);
      const used = num(usage);
      if (cpuNs === null || used === null) return null;
      const cache = statField(stat, 'total_inactive_file') || statField(stat, 'inactive_file');
      const lim = num(limit);
      // v1 says "no limit" with a huge number (the page-rounded LONG_MAX).
      return { cpuNs, memoryBytes: Math.max(0, used - cache), limitBytes: lim !== null && lim < 2 ** 62 ? lim : null };
    } catch {
      return null;
    }
  }
}
