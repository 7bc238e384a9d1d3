import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { sleep } from '../util/ticker';
import { RedisKeys } from './redis-keys';
import { defineScript, parseHash } from './scripts';

const RELEASE_IF_OWNER = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;
const holdersSchema = z.array(z.string());

/** The view of the allocations a change works on, inside the lock. */
export interface GpuHolders {
  /** Device uuid -> the task ids holding it. */
  holders: Map<string, string[]>;
  /** Sets a device's holders (none: the device is free). */
  set(uuid: string, taskIds: string[]): Promise<void>;
}

/**
 * Who holds which GPU (hash device uuid -> JSON list of task ids), shared by every
 * executor of the node, changed only under a short lock (`gpus:lock`, 5 s). The executor
 * that starts a task creates or extends its devices' entries; the executor that ends it,
 * or any reconciler for tasks the node no longer holds, shrinks or deletes them.
 */
export class GpuAllocations {
  private readonly unlockScript: (...args: (string | number)[]) => Promise<number>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.unlockScript = defineScript<number>(redis, 'hivemindReleaseIfOwner', 1, RELEASE_IF_OWNER);
  }

  /** Runs `fn` with the lock held; throws when the lock stays taken for `waitMs`. */
  async change<T>(fn: (view: GpuHolders) => Promise<T>, waitMs = 10_000): Promise<T> {
    const token = randomBytes(8).toString('hex');
    const deadline = Date.now() + waitMs;
    while (!(await this.redis.set(this.keys.gpuLock, token, 'PX', 5000, 'NX'))) {
      if (Date.now() > deadline) throw new Error(`the GPU allocation lock stayed taken for ${waitMs / 1000} s`);
      await sleep(50);
    }
    try {
      const holders = await this.holders();
      return await fn({
        holders,
        set: async (uuid, taskIds) => {
          if (taskIds.length) await this.redis.hset(this.keys.gpus, uuid, JSON.stringify(taskIds));
          else await this.redis.hdel(this.keys.gpus, uuid);
        },
      });
    } finally {
      await this.unlockScript(this.keys.gpuLock, token);
    }
  }

  async holders(): Promise<Map<string, string[]>> {
    return parseHash(holdersSchema, await this.redis.hgetall(this.keys.gpus));
  }

  /** Whether any device is held at all (a cheap check before taking the lock). */
  async any(): Promise<boolean> {
    return (await this.redis.exists(this.keys.gpus)) === 1;
  }
}
