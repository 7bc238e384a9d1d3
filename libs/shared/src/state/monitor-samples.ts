import type { Redis } from 'ioredis';
import { z } from 'zod';
import { RedisKeys } from './redis-keys';
import { parseJson } from './scripts';

const gpuSampleSchema = z.object({
  name: z.string(),
  utilizationPercent: z.number(),
  memoryUsedMb: z.number(),
  memoryTotalMb: z.number(),
});
export type GpuSample = z.infer<typeof gpuSampleSchema>;

/** One reading of the host, as the monitor publishes it. */
export const hostSampleSchema = z.object({
  at: z.number(),
  cpuPercent: z.number(),
  memoryPercent: z.number(),
  memoryUsedBytes: z.number(),
  memoryTotalBytes: z.number(),
  diskPercent: z.number(),
  diskFreeBytes: z.number(),
  diskTotalBytes: z.number(),
  netRxBytesPerSec: z.number(),
  netTxBytesPerSec: z.number(),
  gpus: z.array(gpuSampleSchema),
});
export type HostSample = z.infer<typeof hostSampleSchema>;

/**
 * The monitor's host samples: the newest (JSON) and the recent ones (a list, newest
 * first, trimmed to MONITOR_HISTORY). Only the monitor's sampler writes them, every
 * MONITOR_INTERVAL; nobody deletes them (the list is trimmed on each write). Read by the
 * gateway (heartbeats, /api, the dashboard's charts), the owner watch and health checks.
 */
export class MonitorSamples {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async publish(sample: HostSample, keep: number): Promise<void> {
    const json = JSON.stringify(hostSampleSchema.parse(sample));
    await this.redis
      .multi()
      .set(this.keys.monitorLatest, json)
      .lpush(this.keys.monitorHistory, json)
      .ltrim(this.keys.monitorHistory, 0, Math.max(0, keep - 1))
      .exec();
  }

  /** The newest sample, or null when there is none, it is unreadable, or older than maxAgeMs. */
  async latest(maxAgeMs = 60_000, now = Date.now()): Promise<HostSample | null> {
    const s = parseJson(hostSampleSchema, await this.redis.get(this.keys.monitorLatest));
    return s && now - s.at <= maxAgeMs ? s : null;
  }

  /** The kept samples, oldest first (an unreadable one is left out). */
  async history(): Promise<HostSample[]> {
    const raw = await this.redis.lrange(this.keys.monitorHistory, 0, -1);
    const out: HostSample[] = [];
    for (let i = raw.length - 1; i >= 0; i--) {
      const s = parseJson(hostSampleSchema, raw[i]);
      if (s) out.push(s);
    }
    return out;
  }
}
