import { DevpoolConfig, DevpoolUser } from '@hivemind/shared/config/devpool-config';
import { RegisterWorkerNodeRequest, TaskInfo, UploadTaskRequest } from '@hivemind/shared/proto/generated/nodepool';
import { checkTaskId } from '@hivemind/shared/task-format/task-id';

export type PoolTaskStatus = 'PENDING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'STOPPED';

/** The pool keeps only this many characters of a task's output. */
export const LOG_TAIL = 10_240;

export interface PoolTask {
  taskId: string;
  owner: string;
  zip: Buffer;
  memoryGb: number;
  cpuScore: number;
  gpuScore: number;
  gpuMemoryGb: number;
  location: string;
  status: PoolTaskStatus;
  message: string;
  log: string;
  result: Buffer | null;
  /** How many results arrived for the task (more than one: a worker uploaded it again). */
  resultUploads: number;
  nodeId: string | null;
  workerIp: string;
  usage: { cpu: number; memory: number; gpu: number; gpuMemory: number };
  createdAt: number;
  startedAt: number | null;
  allocated: boolean;
  offers: number;
  /** Accepted by a worker, not yet recorded (the ~200 ms window). */
  dispatching: boolean;
}

export interface PoolNode extends RegisterWorkerNodeRequest {
  status: string;
  lastSeen: number;
  alloc: { cpuScore: number; memoryGb: number; gpuScore: number; gpuMemoryGb: number };
  usage: { cpu: number; memory: number; gpu: number; gpuMemory: number };
  runningTasks: number;
}

/**
 * The local Node Pool's state and rules, kept apart from gRPC so they can be tested
 * with a fake clock. Mirrors the deployed pool as shared/spec describes it.
 */
export class PoolState {
  readonly users = new Map<string, DevpoolUser>();
  readonly nodes = new Map<string, PoolNode>();
  readonly tasks = new Map<string, PoolTask>();

  constructor(
    private readonly config: Pick<DevpoolConfig, 'users' | 'DEVPOOL_LIVENESS_TIMEOUT' | 'DEVPOOL_HEARTBEAT_TIMEOUT' | 'DEVPOOL_NODE_FORGET'>,
    private readonly now: () => number = Date.now,
  ) {
    for (const u of config.users) this.users.set(u.username, { ...u });
  }

  checkPassword(username: string, password: string): DevpoolUser | null {
    const u = this.users.get(username);
    return u && u.password === password ? u : null;
  }

  /**
   * Registers a node, or takes it as a heartbeat. As on the deployed pool, a node with no
   * RUNNING task is set `Idle`, whatever it last reported, and what the pool handed out
   * to it is forgotten (its available resources go back to the totals): a node that is
   * not taking work must report its real status again right after registering.
   */
  registerNode(req: RegisterWorkerNodeRequest): { success: boolean; message: string } {
    if (!req.node_id) return { success: false, message: 'node_id is required' };
    const prev = this.nodes.get(req.node_id);
    const running = [...this.tasks.values()].some((t) => t.status === 'RUNNING' && t.nodeId === req.node_id);
    if (!running) for (const t of this.tasks.values()) if (t.nodeId === req.node_id) t.allocated = false;
    this.nodes.set(req.node_id, {
      ...req,
      status: running && prev ? prev.status : 'Idle',
      lastSeen: this.now(),
      alloc: running && prev ? prev.alloc : { cpuScore: 0, memoryGb: 0, gpuScore: 0, gpuMemoryGb: 0 },
      usage: prev?.usage ?? { cpu: 0, memory: 0, gpu: 0, gpuMemory: 0 },
      runningTasks: prev?.runningTasks ?? 0,
    });
    const dialable = req.hostname && req.hostname !== '127.0.0.1';
    return {
      success: true,
      message: dialable ? `node ${req.node_id} registered` : `node ${req.node_id} registered, but hostname "${req.hostname}" cannot be dialled; no task will be sent`,
    };
  }

  /** Records a status report; returns false for an unknown node, else whether the status changed. */
  reportStatus(nodeId: string, status: string, usage: PoolNode['usage'], runningTasks: number, dockerStatus: string): boolean | 'changed' {
    const n = this.nodes.get(nodeId);
    if (!n) return false;
    const changed = n.status !== status;
    n.status = status;
    n.usage = usage;
    n.runningTasks = runningTasks;
    n.docker_status = dockerStatus;
    n.lastSeen = this.now();
    return changed ? 'changed' : true;
  }

  upload(owner: string, req: UploadTaskRequest): { success: boolean; message: string } {
    const idError = checkTaskId(req.task_id);
    if (idError) return { success: false, message: idError };
    if (this.tasks.has(req.task_id)) return { success: false, message: `task ${req.task_id} already exists` };
    if (!req.task_zip?.length) return { success: false, message: 'task_zip is empty' };
    this.tasks.set(req.task_id, {
      taskId: req.task_id,
      owner,
      zip: Buffer.from(req.task_zip),
      memoryGb: req.memory_gb,
      cpuScore: req.cpu_score,
      gpuScore: req.gpu_score,
      gpuMemoryGb: req.gpu_memory_gb,
      location: req.location,
      status: 'PENDING',
      message: 'waiting for a node',
      log: '',
      result: null,
      resultUploads: 0,
      nodeId: null,
      workerIp: '',
      usage: { cpu: 0, memory: 0, gpu: 0, gpuMemory: 0 },
      createdAt: this.now(),
      startedAt: null,
      allocated: false,
      offers: 0,
      dispatching: false,
    });
    return { success: true, message: `task ${req.task_id} uploaded` };
  }

  /** Nodes the dispatcher may use now: status exactly Idle, fresh heartbeat, dialable. */
  dispatchable(): PoolNode[] {
    const limit = this.config.DEVPOOL_HEARTBEAT_TIMEOUT * 1000;
    return [...this.nodes.values()].filter(
      (n) => n.status === 'Idle' && this.now() - n.lastSeen < limit && n.hostname !== '' && n.hostname !== '127.0.0.1',
    );
  }

  /** Whether the task fits what the pool has not yet handed out on the node. */
  fits(task: PoolTask, n: PoolNode): boolean {
    return (
      n.alloc.cpuScore + task.cpuScore <= n.cpu_score &&
      n.alloc.memoryGb + task.memoryGb <= n.memory_gb &&
      n.alloc.gpuScore + task.gpuScore <= n.gpu_score &&
      n.alloc.gpuMemoryGb + task.gpuMemoryGb <= n.gpu_memory_gb
    );
  }

  pending(): PoolTask[] {
    return [...this.tasks.values()].filter((t) => t.status === 'PENDING' && !t.dispatching).sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Records an accepted dispatch (the deployed pool does this ~200 ms after the
   * worker's reply). A result that already arrived in that window is overwritten:
   * the task ends FAILED and the node's allocation leaks, as on the deployed pool.
   */
  recordDispatch(task: PoolTask, n: PoolNode): void {
    const raced = task.status === 'COMPLETED';
    task.dispatching = false;
    task.nodeId = n.node_id;
    task.workerIp = n.hostname;
    task.startedAt = this.now();
    this.allocate(task, n);
    if (raced) {
      task.status = 'FAILED';
      task.message = 'the result arrived before the pool recorded the dispatch and was overwritten';
    } else if (task.status === 'PENDING') {
      task.status = 'RUNNING';
      task.message = `running on ${n.node_id}`;
    }
  }

  private allocate(task: PoolTask, n: PoolNode): void {
    n.alloc.cpuScore += task.cpuScore;
    n.alloc.memoryGb += task.memoryGb;
    n.alloc.gpuScore += task.gpuScore;
    n.alloc.gpuMemoryGb += task.gpuMemoryGb;
    task.allocated = true;
  }

  private release(task: PoolTask): void {
    const n = task.nodeId ? this.nodes.get(task.nodeId) : undefined;
    if (!task.allocated || !n) return;
    n.alloc.cpuScore -= task.cpuScore;
    n.alloc.memoryGb -= task.memoryGb;
    n.alloc.gpuScore -= task.gpuScore;
    n.alloc.gpuMemoryGb -= task.gpuMemoryGb;
    task.allocated = false;
  }

  appendOutput(taskId: string, output: string): boolean {
    const t = this.tasks.get(taskId);
    if (!t) return false;
    t.log = (t.log + output + '\n').slice(-LOG_TAIL);
    return true;
  }

  /** Stores a result; the task is COMPLETED whatever happened inside (STOPPED stays STOPPED). */
  storeResult(taskId: string, zip: Buffer, nodeId: string | null): { success: boolean; message: string } {
    const t = this.tasks.get(taskId);
    if (!t) return { success: false, message: `unknown task ${taskId}` };
    t.result = Buffer.from(zip);
    t.resultUploads += 1;
    if (t.status !== 'STOPPED') {
      t.status = 'COMPLETED';
      // Like the deployed pool, a later copy overwrites the first; unlike it, devpool says so.
      t.message = t.resultUploads > 1 ? `completed; the result arrived ${t.resultUploads} times` : 'completed';
    }
    this.release(t);
    const credited = nodeId ?? t.nodeId;
    const worker = credited ? this.users.get(credited) : undefined;
    if (worker && t.startedAt) worker.balance += Math.max(1, Math.ceil((this.now() - t.startedAt) / 60_000));
    return { success: true, message: `result of ${taskId} stored` };
  }

  stop(taskId: string): PoolTask | null {
    const t = this.tasks.get(taskId);
    if (!t) return null;
    t.status = 'STOPPED';
    t.message = 'stopped by its owner';
    return t;
  }

  setUsage(taskId: string, usage: PoolTask['usage']): boolean {
    const t = this.tasks.get(taskId);
    if (!t) return false;
    t.usage = usage;
    return true;
  }

  setNodeUsage(nodeId: string, usage: PoolNode['usage']): boolean {
    const n = this.nodes.get(nodeId);
    if (!n) return false;
    n.usage = usage;
    return true;
  }

  /**
   * The liveness rule: a RUNNING task whose node has been silent for the liveness
   * timeout (twice that when the node's status says Running) is FAILED, never
   * redispatched. Nodes silent for DEVPOOL_NODE_FORGET are forgotten.
   */
  enforceLiveness(): PoolTask[] {
    const failed: PoolTask[] = [];
    const base = this.config.DEVPOOL_LIVENESS_TIMEOUT * 1000;
    for (const t of this.tasks.values()) {
      if (t.status !== 'RUNNING' || !t.nodeId) continue;
      const n = this.nodes.get(t.nodeId);
      const limit = n && n.status.includes('Running') ? base * 2 : base;
      if (!n || this.now() - n.lastSeen > limit) {
        t.status = 'FAILED';
        t.message = `node ${t.nodeId} stopped reporting`;
        this.release(t);
        failed.push(t);
      }
    }
    for (const [id, n] of this.nodes) {
      if (this.now() - n.lastSeen > this.config.DEVPOOL_NODE_FORGET * 1000) this.nodes.delete(id);
    }
    return failed;
  }

  taskInfo(t: PoolTask): TaskInfo {
    return {
      task_id: t.taskId,
      status: t.status,
      message: t.message,
      cpu_usage: t.usage.cpu,
      memory_usage: t.usage.memory,
      gpu_usage: t.usage.gpu,
      gpu_memory_usage: t.usage.gpuMemory,
      worker_ip: t.workerIp,
    };
  }
}
