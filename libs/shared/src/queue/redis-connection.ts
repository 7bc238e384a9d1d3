import IORedis, { Redis, RedisOptions } from 'ioredis';

/**
 * A Redis connection with BullMQ's production settings: no per-command retry limit
 * (workers must block and wait through an outage) and reconnection with a capped delay.
 */
export function createRedis(url: string, name: string, extra: RedisOptions = {}): Redis {
  const redis = new IORedis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: `hivemind-${name}`,
    retryStrategy: (times) => Math.min(200 * times, 5000),
    ...extra,
  });
  return redis;
}
