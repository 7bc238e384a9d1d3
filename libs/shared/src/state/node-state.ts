import type { Redis, RedisOptions } from 'ioredis';
import { createRedis } from '../queue/redis-connection';
import { CallerRefusals } from './caller-refusals';
import { ControlChannel } from './control-channel';
import { Executors } from './executors';
import { GpuAllocations } from './gpu-allocations';
import { ResourceLedger } from './ledger';
import { MonitorSamples } from './monitor-samples';
import { OutputStream } from './output-stream';
import { OwnerStateRepository } from './owner-state';
import { RedisKeys } from './redis-keys';
import { RefusedResults } from './refused-results';
import { RunningTasks } from './running-tasks';
import { SettingsOverrides } from './settings';
import { TaskHistoryRepository } from './task-history';
import { TaskRecords } from './task-records';

/**
 * Every repository of the node's state in Redis, over one connection: one repository
 * per structure, each the only code that knows its keys. The services get them through
 * StateModule; the CLI and the tests open them with connectNodeState.
 */
export interface NodeState {
  tasks: TaskRecords;
  running: RunningTasks;
  executors: Executors;
  ledger: ResourceLedger;
  refused: RefusedResults;
  output: OutputStream;
  control: ControlChannel;
  owner: OwnerStateRepository;
  monitor: MonitorSamples;
  history: TaskHistoryRepository;
  settings: SettingsOverrides;
  gpus: GpuAllocations;
  callerRefusals: CallerRefusals;
}

export function openNodeState(redis: Redis, prefix: string): NodeState {
  const keys = new RedisKeys(prefix);
  return {
    tasks: new TaskRecords(redis, keys),
    running: new RunningTasks(redis, keys),
    executors: new Executors(redis, keys),
    ledger: new ResourceLedger(redis, keys),
    refused: new RefusedResults(redis, keys),
    output: new OutputStream(redis, keys),
    control: new ControlChannel(redis, keys),
    owner: new OwnerStateRepository(redis, keys),
    monitor: new MonitorSamples(redis, keys),
    history: new TaskHistoryRepository(redis, keys),
    settings: new SettingsOverrides(redis, keys),
    gpus: new GpuAllocations(redis, keys),
    callerRefusals: new CallerRefusals(redis, keys),
  };
}

/** A connection to Redis and the node's state over it, for code outside the services (CLI, tests). */
export interface NodeStateConnection extends NodeState {
  /** Connects now (else the first command does); rejects when Redis cannot be reached. */
  connect(): Promise<void>;
  /** Redis answers PING. */
  ping(): Promise<boolean>;
  /** Closes after the commands sent so far have their answers. */
  close(): Promise<void>;
  /** Closes at once. */
  disconnect(): void;
}

export type NodeStateOptions = RedisOptions & {
  /** Called with each connection error (otherwise they are ignored; commands still fail). */
  onError?: (err: Error) => void;
};

export function connectNodeState(url: string, prefix: string, name: string, { onError, ...extra }: NodeStateOptions = {}): NodeStateConnection {
  const redis = createRedis(url, name, { lazyConnect: true, ...extra });
  redis.on('error', (err: Error) => onError?.(err));
  return {
    ...openNodeState(redis, prefix),
    connect: () => redis.connect(),
    ping: async () => (await redis.ping()) === 'PONG',
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
    disconnect: () => redis.disconnect(),
  };
}
