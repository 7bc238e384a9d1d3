import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown, Provider } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { WorkerConfig } from '../config/worker-config';
import { createRedis } from '../queue/redis-connection';
import { CallerRefusals } from './caller-refusals';
import { ControlChannel } from './control-channel';
import { Executors } from './executors';
import { GpuAllocations } from './gpu-allocations';
import { ResourceLedger } from './ledger';
import { MonitorSamples } from './monitor-samples';
import { NodeState, openNodeState } from './node-state';
import { OutputStream } from './output-stream';
import { OwnerStateRepository } from './owner-state';
import { RedisKeys } from './redis-keys';
import { RefusedResults } from './refused-results';
import { RunningTasks } from './running-tasks';
import { SettingsOverrides } from './settings';
import { TaskHistoryRepository } from './task-history';
import { TaskRecords } from './task-records';
import { createTaskStore, TASK_STORE } from './task-store';

/** The service's one Redis connection: injected only by the code in this folder. */
const REDIS = Symbol('REDIS');
const NODE_STATE = Symbol('NODE_STATE');

/** Whether the state's Redis answers (for health checks), without handing out the connection. */
@Injectable()
export class StateLink implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  async ping(): Promise<boolean> {
    return (await this.redis.ping()) === 'PONG';
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

const REPOSITORIES: [new (...args: never[]) => unknown, keyof NodeState][] = [
  [TaskRecords, 'tasks'],
  [RunningTasks, 'running'],
  [Executors, 'executors'],
  [ResourceLedger, 'ledger'],
  [RefusedResults, 'refused'],
  [OutputStream, 'output'],
  [ControlChannel, 'control'],
  [OwnerStateRepository, 'owner'],
  [MonitorSamples, 'monitor'],
  [TaskHistoryRepository, 'history'],
  [SettingsOverrides, 'settings'],
  [GpuAllocations, 'gpus'],
  [CallerRefusals, 'callerRefusals'],
];

/**
 * The node's state in Redis for a service: one connection (named after the service),
 * every repository, the task store and StateLink. BullMQ's queues and workers open
 * connections of their own (see queue/queues.ts).
 */
@Global()
@Module({})
export class StateModule {
  static forRoot(config: WorkerConfig, service: string): DynamicModule {
    const repositories: Provider[] = REPOSITORIES.map(([token, field]) => ({ provide: token, inject: [NODE_STATE], useFactory: (s: NodeState) => s[field] }));
    return {
      module: StateModule,
      providers: [
        { provide: REDIS, useFactory: () => createRedis(config.REDIS_URL, service) },
        { provide: NODE_STATE, inject: [REDIS], useFactory: (redis: Redis) => openNodeState(redis, config.REDIS_PREFIX) },
        { provide: TASK_STORE, inject: [REDIS], useFactory: (redis: Redis) => createTaskStore(config, redis, new RedisKeys(config.REDIS_PREFIX)) },
        ...repositories,
        StateLink,
      ],
      exports: [...REPOSITORIES.map(([token]) => token), TASK_STORE, StateLink],
    };
  }
}
