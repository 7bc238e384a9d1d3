import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '../config/worker-config';
import { LOGGER } from '../logging/logger';
import { createRedis } from '../queue/redis-connection';
import { RedisKeys } from '../queue/redis-keys';
import { ResourceLedger } from '../resources/ledger';
import { detectGpus, gpuCapacity } from '../resources/gpu';
import { NodeCapacity } from '../resources/limits';

export const REDIS = Symbol('REDIS');
export const NODE_CAPACITY = Symbol('NODE_CAPACITY');

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}
  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** The node's registered capacity, from config and the machine. */
export function nodeCapacity(c: WorkerConfig): NodeCapacity {
  return { cpuCores: c.cpuCores, cpuScore: c.cpuScore, memoryGb: c.memoryGb, gpuScore: 0, gpuMemoryGb: 0, maxTasks: c.MAX_CONCURRENT_TASKS, gpuSharing: c.GPU_SHARING };
}

/**
 * What every worker service (gateway, executor, monitor) shares: validated config,
 * the logger, one Redis connection, the key names and the resource ledger.
 */
@Global()
@Module({})
export class WorkerCoreModule {
  static forRoot(config: WorkerConfig, logger: Logger, service: string): DynamicModule {
    return {
      module: WorkerCoreModule,
      providers: [
        { provide: WORKER_CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: REDIS, useFactory: () => createRedis(config.REDIS_URL, service) },
        { provide: RedisKeys, useValue: new RedisKeys(config.REDIS_PREFIX) },
        {
          provide: NODE_CAPACITY,
          useFactory: async (): Promise<NodeCapacity> => {
            const base = nodeCapacity(config);
            if (config.GPU_MODE === 'off') return { ...base, cpuOnly: true };
            const { devices, problem } = await detectGpus(config.GPU_DETECT_TIMEOUT * 1000);
            if (devices.length) logger.info({ gpus: devices.map((d) => `${d.index}: ${d.name} (${d.memoryMb} MB)`) }, 'GPUs found');
            else logger.debug({ problem }, 'no GPU');
            return { ...base, ...gpuCapacity(devices), gpuDevices: devices };
          },
        },
        {
          provide: ResourceLedger,
          inject: [REDIS, RedisKeys],
          useFactory: (redis: Redis, keys: RedisKeys) => new ResourceLedger(redis, keys.ledger),
        },
        RedisCloser,
      ],
      exports: [WORKER_CONFIG, LOGGER, REDIS, RedisKeys, NODE_CAPACITY, ResourceLedger],
    };
  }
}
