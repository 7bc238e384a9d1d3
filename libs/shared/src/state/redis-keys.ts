/**
 * Names of the Redis keys the services share, under one configurable prefix. Only the
 * repositories in this folder use them: each structure has one repository, and that
 * repository is the only code that knows its key.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** BullMQ's own prefix for the queues. */
  get bullPrefix(): string {
    return bullPrefix(this.prefix);
  }
  /** RefusedResults. */
  get refusedResults(): string {
    return `${this.prefix}:results:refused`;
  }
  /** ResourceLedger. */
  get ledger(): string {
    return `${this.prefix}:ledger`;
  }
  /** RunningTasks. */
  get running(): string {
    return `${this.prefix}:running`;
  }
  /** OutputStream. */
  get output(): string {
    return `${this.prefix}:output`;
  }
  /** Executors. */
  get executors(): string {
    return `${this.prefix}:executors`;
  }
  /** GpuAllocations: who holds which device. */
  get gpus(): string {
    return `${this.prefix}:gpus`;
  }
  /** GpuAllocations: the short lock around a change. */
  get gpuLock(): string {
    return `${this.prefix}:gpus:lock`;
  }
  /** ControlChannel: pub/sub channel of stop messages. */
  get control(): string {
    return `${this.prefix}:control`;
  }
  /** ControlChannel: present while the node is paused. */
  get paused(): string {
    return `${this.prefix}:paused`;
  }
  /** ControlChannel: set when the pool asked to stop a task that may not have started yet. */
  stop(taskId: string): string {
    return `${this.prefix}:stop:${taskId}`;
  }
  /** CallerRefusals. */
  get callerRefusals(): string {
    return `${this.prefix}:stats:caller-refusals`;
  }
  /** MonitorSamples: the newest sample. */
  get monitorLatest(): string {
    return `${this.prefix}:monitor:latest`;
  }
  /** MonitorSamples: the recent ones, newest first. */
  get monitorHistory(): string {
    return `${this.prefix}:monitor:history`;
  }
  /** TaskRecords. */
  task(taskId: string): string {
    return `${this.prefix}:task:${taskId}`;
  }
  /** NodeSettingsRepository. */
  get settings(): string {
    return `${this.prefix}:settings`;
  }
  /** OwnerStateRepository: the monitor's published state. */
  get ownerState(): string {
    return `${this.prefix}:owner:state`;
  }
  /** OwnerStateRepository: tasks an executor paused for the owner. */
  get ownerFrozen(): string {
    return `${this.prefix}:owner:frozen`;
  }
  /** TaskHistoryRepository: finished tasks. */
  get history(): string {
    return `${this.prefix}:history`;
  }
  /** TaskHistoryRepository: a running task's usage sums. */
  taskUsage(taskId: string): string {
    return `${this.prefix}:usage:${taskId}`;
  }
  /** RedisTaskStore: a task's or a result's zip blob. */
  blob(kind: 'task' | 'result', taskId: string): string {
    return `${this.prefix}:blob:${kind}:${taskId}`;
  }
}

/** BullMQ's prefix for the node's queues (BullMQ owns those keys and its own connections). */
export function bullPrefix(prefix: string): string {
  return `${prefix}:q`;
}
