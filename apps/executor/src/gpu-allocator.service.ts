import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { NODE_CAPACITY, REDIS } from '@hivemind/shared/nest/worker-core.module';
import { RedisKeys } from '@hivemind/shared/queue/redis-keys';
import { chooseGpus, GpuAsk, wantsGpu } from '@hivemind/shared/resources/gpu';
import { NodeCapacity } from '@hivemind/shared/resources/limits';
import { sleep } from '@hivemind/shared/util/ticker';

const RELEASE_IF_OWNER = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

/**
 * Hands GPUs to tasks. Who holds which device lives in Redis (shared by every executor
 * of the node) and changes only under a short lock, so no two running tasks get one
 * device unless GPU_SHARING allows it.
 */
@Injectable()
export class GpuAllocatorService {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(NODE_CAPACITY) private readonly node: NodeCapacity,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    const token = randomBytes(8).toString('hex');
    const deadline = Date.now() + 10_000;
    while (!(await this.redis.set(this.keys.gpuLock, token, 'PX', 5000, 'NX'))) {
      if (Date.now() > deadline) throw new Error('the GPU allocation lock stayed taken for 10 s');
      await sleep(50);
    }
    try {
      return await fn();
    } finally {
      await this.redis.eval(RELEASE_IF_OWNER, 1, this.keys.gpuLock, token);
    }
  }

  private async holders(): Promise<Map<string, string[]>> {
    const raw = await this.redis.hgetall(this.keys.gpus);
    return new Map(Object.entries(raw).map(([uuid, v]) => [uuid, JSON.parse(v) as string[]]));
  }

  /** The devices a task gets (empty when it asks none), or why it cannot have any. */
  async allocate(taskId: string, ask: GpuAsk): Promise<{ uuids: string[] } | { error: string }> {
    if (!wantsGpu(ask)) return { uuids: [] };
    if (this.node.cpuOnly) return { error: 'the task asks for a GPU; this node runs CPU-only (GPU_MODE=off)' };
    return this.locked(async () => {
      const holders = await this.holders();
      const already = [...holders].filter(([, tasks]) => tasks.includes(taskId)).map(([uuid]) => uuid);
      if (already.length) return { uuids: already };
      const choice = chooseGpus(this.node.gpuDevices ?? [], holders, ask, this.config.GPU_SHARING);
      if ('error' in choice) return choice;
      for (const uuid of choice.uuids) await this.redis.hset(this.keys.gpus, uuid, JSON.stringify([...(holders.get(uuid) ?? []), taskId]));
      return choice;
    });
  }

  /** Frees what `keep` says is no longer held: one task's devices, or those of tasks gone. */
  async release(keep: (taskId: string) => boolean): Promise<void> {
    if (!(await this.redis.exists(this.keys.gpus))) return;
    await this.locked(async () => {
      for (const [uuid, tasks] of await this.holders()) {
        const left = tasks.filter(keep);
        if (left.length === tasks.length) continue;
        if (left.length) await this.redis.hset(this.keys.gpus, uuid, JSON.stringify(left));
        else await this.redis.hdel(this.keys.gpus, uuid);
      }
    });
  }
}
