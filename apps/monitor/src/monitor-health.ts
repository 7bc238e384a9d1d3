import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Provider } from '@nestjs/common';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { READINESS_CHECKS, ReadinessCheck, redisCheck } from '@hivemind/shared/http/health';
import { MonitorSamples } from '@hivemind/shared/state/monitor-samples';
import { StateLink } from '@hivemind/shared/state/state.module';

const MB = 1024 * 1024;

/** Free bytes on the file system that holds `dir` (or its nearest existing parent). */
async function freeDiskBytes(dir: string): Promise<number> {
  let d = path.resolve(dir);
  for (;;) {
    try {
      const st = await fs.statfs(d);
      return st.bavail * st.bsize;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(d) === d) throw err;
      d = path.dirname(d);
    }
  }
}

/** The monitor is ready when Redis answers, it has sampled lately, and disk and memory are above their floors. */
export function monitorReadiness(config: WorkerConfig, redis: StateLink, samples: MonitorSamples): ReadinessCheck[] {
  const minDisk = config.HEALTH_MIN_FREE_DISK_MB;
  const minMem = config.HEALTH_MIN_FREE_MEMORY_MB;
  return [
    redisCheck(redis),
    {
      name: 'sampler',
      check: async () => {
        const at = (await samples.latest(Number.POSITIVE_INFINITY))?.at ?? null;
        const maxAgeS = Math.max(15, 3 * config.MONITOR_INTERVAL);
        if (at === null) return { ok: false, reason: 'no host sample published yet' };
        const ageS = (Date.now() - at) / 1000;
        return ageS <= maxAgeS
          ? { ok: true, details: { lastSampleAgeSeconds: Math.round(ageS) } }
          : { ok: false, reason: `the last host sample is ${Math.round(ageS)} s old (more than ${maxAgeS} s)` };
      },
    },
    {
      name: 'disk',
      check: async () => {
        const free = await freeDiskBytes(config.workDir);
        const details = { path: config.workDir, freeMb: Math.floor(free / MB), minFreeMb: minDisk };
        return free >= minDisk * MB
          ? { ok: true, details }
          : { ok: false, details, reason: `only ${Math.floor(free / MB)} MB free under ${config.workDir}, below HEALTH_MIN_FREE_DISK_MB=${minDisk}` };
      },
    },
    {
      name: 'memory',
      check: async () => {
        // libuv reads MemAvailable: memory the kernel can hand out without swapping.
        const free = os.freemem();
        const details = { availableMb: Math.floor(free / MB), minFreeMb: minMem };
        return free >= minMem * MB
          ? { ok: true, details }
          : { ok: false, details, reason: `only ${Math.floor(free / MB)} MB of memory available, below HEALTH_MIN_FREE_MEMORY_MB=${minMem}` };
      },
    },
  ];
}

export const monitorReadinessProvider: Provider = {
  provide: READINESS_CHECKS,
  inject: [WORKER_CONFIG, StateLink, MonitorSamples],
  useFactory: monitorReadiness,
};
