import type { Redis } from 'ioredis';
import { RedisKeys } from './redis-keys';

/**
 * The live settings' overrides (hash field -> value as text), on top of the config's
 * defaults. Created, updated and deleted only through NodeSettingsStore (the dashboard's
 * settings form, or its reset), which validates every value it writes and reads; read
 * by every service.
 */
export class SettingsOverrides {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  read(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.settings);
  }

  async write(values: Record<string, string>): Promise<void> {
    if (Object.keys(values).length) await this.redis.hset(this.keys.settings, values);
  }

  async clear(): Promise<void> {
    await this.redis.del(this.keys.settings);
  }
}
