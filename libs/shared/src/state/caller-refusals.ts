import type { Redis } from 'ioredis';
import { RedisKeys } from './redis-keys';

/**
 * How many callers the gateway refused at ExecuteTask/StopTaskExecution, by reason (hash
 * reason -> count). Only the gateway's caller guard increments it; nothing deletes it
 * (counts survive a restart). Read by /metrics.
 */
export class CallerRefusals {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async count(reason: string): Promise<void> {
    await this.redis.hincrby(this.keys.callerRefusals, reason, 1);
  }

  async all(): Promise<Map<string, number>> {
    const raw = await this.redis.hgetall(this.keys.callerRefusals);
    return new Map(Object.entries(raw).map(([k, v]) => [k, Number(v) || 0]));
  }
}
