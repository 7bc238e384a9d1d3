/** Names of the Redis keys the services share, under one configurable prefix. */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** BullMQ's own prefix for the queues. */
  get bullPrefix(): string {
    return `${this.prefix}:q`;
  }
  /**
   * hash taskId -> JSON RefusedResult: results the pool refused (TaskResultUpload answered
   * success=false), whose slot is free, still retried slowly until RESULT_REFUSED_RETRY ends.
   */
  get refusedResults(): string {
    return `${this.prefix}:results:refused`;
  }
  /** hash taskId -> JSON Reservation: what every accepted, unfinished task holds. */
  get ledger(): string {
    return `${this.prefix}:ledger`;
  }
  /** hash taskId -> JSON RunningTask: tasks whose container runs now. */
  get running(): string {
    return `${this.prefix}:running`;
  }
  /** stream of output batches: fields task, text. */
  get output(): string {
    return `${this.prefix}:output`;
  }
  /** hash executorId -> JSON ExecutorBeat (an executor's entry is pruned once its beat is EXECUTOR_PRUNE_MS old). */
  get executors(): string {
    return `${this.prefix}:executors`;
  }
  /** hash GPU uuid -> JSON list of the task ids holding that device. */
  get gpus(): string {
    return `${this.prefix}:gpus`;
  }
  /** set of image ids the executor pulled (removed by its disk clean-up once dangling). */
  get pulledImages(): string {
    return `${this.prefix}:pulled-images`;
  }
  /** short lock around GPU allocation. */
  get gpuLock(): string {
    return `${this.prefix}:gpus:lock`;
  }
  /** pub/sub channel for control messages (stop). */
  get control(): string {
    return `${this.prefix}:control`;
  }
  /** hash reason -> count of callers refused at ExecuteTask/StopTaskExecution. */
  get callerRefusals(): string {
    return `${this.prefix}:stats:caller-refusals`;
  }
  get monitorLatest(): string {
    return `${this.prefix}:monitor:latest`;
  }
  get monitorHistory(): string {
    return `${this.prefix}:monitor:history`;
  }
  /** hash with a task's timeline (acceptedAt, repliedAt). */
  task(taskId: string): string {
    return `${this.prefix}:task:${taskId}`;
  }
  /** Present while the node is paused: it takes no new tasks (the dashboard's pause). */
  get paused(): string {
    return `${this.prefix}:paused`;
  }
  /** hash of live settings overrides (NodeSettings fields), changed from the dashboard. */
  get settings(): string {
    return `${this.prefix}:settings`;
  }
  /**
   * JSON OwnerState: whether the machine's owner is busy, the working hours, which
   * tasks are paused for the owner (written by the monitor, read by the gateway and
   * the dashboard). Expires when the monitor stops writing it.
   */
  get ownerState(): string {
    return `${this.prefix}:owner:state`;
  }
  /** hash taskId -> ms since epoch: tasks an executor paused for the owner, and since when. */
  get ownerFrozen(): string {
    return `${this.prefix}:owner:frozen`;
  }
  /** list of JSON TaskHistoryEntry, newest first, trimmed to TASK_HISTORY_SIZE. */
  get history(): string {
    return `${this.prefix}:history`;
  }
  /** hash of a running task's usage sums (samples, cpuSum, memSum, lastAt), for its averages. */
  taskUsage(taskId: string): string {
    return `${this.prefix}:usage:${taskId}`;
  }
  /** set when the pool asked to stop a task that may not have started yet. */
  stop(taskId: string): string {
    return `${this.prefix}:stop:${taskId}`;
  }
}

export interface RunningTask {
  executorId: string;
  startedAt: number;
  cpuPercent: number;
  memoryPercent: number;
  memoryBytes: number;
  usageAt: number;
}

export interface ExecutorBeat {
  executorId: string;
  runtime: 'docker' | 'process' | 'none';
  docker: 'available' | 'unavailable' | 'disabled';
  running: number;
  concurrency: number;
  seenAt: number;
  /** Why the executor cannot run tasks yet (e.g. a missing task image), while it cannot. */
  problem?: string | null;
}

export type ControlMessage = { type: 'stop'; taskId: string };
