import type { Redis } from 'ioredis';
import { RedisKeys } from '../queue/redis-keys';

export interface GpuSample {
  name: string;
  utilizationPercent: number;
  memoryUsedMb: number;
  memoryTotalMb: number;
}

/** One reading of the host, as the monitor publishes it. */
export interface HostSample {
  at: number;
  cpuPercent: number;
  memoryPercent: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
  diskPercent: number;
  diskFreeBytes: number;
  diskTotalBytes: number;
  netRxBytesPerSec: number;
  netTxBytesPerSec: number;
  gpus: GpuSample[];
}

/** The latest host sample, or null when the monitor has not published one (or it is stale). */
export async function readLatestSample(redis: Redis, keys: RedisKeys, maxAgeMs = 60_000): Promise<HostSample | null> {
  const raw = await redis.get(keys.monitorLatest);
  if (!raw) return null;
  const s = JSON.parse(raw) as HostSample;
  return Date.now() - s.at <= maxAgeMs ? s : null;
}
