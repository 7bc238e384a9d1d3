import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { NodeSettingsStore } from '@hivemind/shared/settings/node-settings';
import { ExecuteTaskRequest, ExecuteTaskResponse } from '@hivemind/shared/proto/generated/nodepool';
import { TaskJob } from '@hivemind/shared/queue/queues';
import { RedisKeys } from '@hivemind/shared/queue/redis-keys';
import { RefusedResults } from '@hivemind/shared/queue/refused-results';
import { ResourceLedger } from '@hivemind/shared/resources/ledger';
import { checkRequest, containerLimits, reservationFor } from '@hivemind/shared/resources/limits';
import { checkTaskId } from '@hivemind/shared/task-format/task-id';
import { TaskFormatError } from '@hivemind/shared/task-format/task-format.error';
import { inspectZip } from '@hivemind/shared/task-format/zip-inspect';
import { TASK_STORE, TaskStore } from '@hivemind/shared/task-store/task-store';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import { NodeStatusService } from '../node-status.service';
import { GatewayMetrics, RefusalKind } from '../metrics/gateway-metrics.service';
import { HeartbeatService } from '../pool/heartbeat.service';
import { TASKS_QUEUE } from '../queues.provider';
import { errorMessage } from '@hivemind/shared/util/errors';

/**
 * Decides whether the node takes a pushed task, and if so stores its zip and queues
 * it. Every refusal says what was wrong; nothing is stored or held for a refused task.
 */
@Injectable()
export class AdmissionService {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly settings: NodeSettingsStore,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(TASKS_QUEUE) private readonly tasks: Queue,
    private readonly keys: RedisKeys,
    private readonly ledger: ResourceLedger,
    private readonly nodeStatus: NodeStatusService,
    private readonly heartbeat: HeartbeatService,
    @Inject(TASK_STORE) private readonly store: TaskStore,
    private readonly metrics: GatewayMetrics,
    private readonly workDir: WorkDir,
  ) {}

  zipPath(taskId: string): string {
    return this.workDir.taskZip(taskId);
  }

  /**
   * @param cancelled whether the caller gave up (deadline passed): a task the pool
   *   no longer waits for is rolled back rather than run behind its back.
   */
  async admit(req: ExecuteTaskRequest, peer: string, cancelled: () => boolean = () => false): Promise<ExecuteTaskResponse> {
    const receivedAt = Date.now();
    const refuse = (kind: RefusalKind, message: string): ExecuteTaskResponse => {
      this.metrics.refused.inc({ reason: kind });
      this.logger.info({ taskId: String(req.task_id).slice(0, 80), peer, reason: message }, 'task refused');
      return { success: false, message };
    };
    if (this.nodeStatus.draining) return refuse('draining', 'the node is shutting down and takes no new tasks');
    if (await this.nodeStatus.paused()) return refuse('paused', 'the node is paused by its owner and takes no new tasks');
    const idError = checkTaskId(req.task_id);
    if (idError) return refuse('invalid_task_id', idError);
    // A lasting refusal before the passing ones (owner busy, outside working hours).
    if (this.config.CPU_ONLY && ((Number(req.gpu_usage) || 0) > 0 || (Number(req.gpu_memory_gb) || 0) > 0)) {
      return refuse('cpu_only', 'the task asks for a GPU; this node runs in CPU-only mode (CPU_ONLY) and gives tasks no GPU');
    }
    const owner = await this.nodeStatus.ownerFirst();
    if (owner) return refuse('owner', owner.message);
    const taskId = req.task_id;

    const request = { cpuScore: req.cpu_usage, gpuScore: req.gpu_usage, memoryGb: req.memory_gb, gpuMemoryGb: req.gpu_memory_gb };
    const node = await this.settings.capacity();
    const fitError = checkRequest(request, node);
    if (fitError) return refuse('does_not_fit', fitError);

    if (await this.ledger.holds(taskId)) return refuse('duplicate', `task ${taskId} is already in flight on this node`);
    // Its result, once refused, is still retried (its slot free): a new run would find and
    // queue that result instead of its own. The waiting result is the pool's answer.
    if (await new RefusedResults(this.redis, this.keys).has(taskId)) {
      return refuse('duplicate', `task ${taskId} already ran on this node; its result is still waiting for the pool to take it`);
    }

    // Faults that never go away (the zip, its size) are reported before passing ones
    // (busy, no executor): the pool offers a refused task again and again, so it should
    // hear the lasting reason. Inspection reads only the zip's central directory.
    let summary;
    try {
      summary = await inspectZip(req.task_zip ?? Buffer.alloc(0), {
        maxEntries: this.config.ZIP_MAX_ENTRIES,
        maxUncompressedBytes: this.config.ZIP_MAX_UNCOMPRESSED_MB * 1024 * 1024,
      });
    } catch (err) {
      if (err instanceof TaskFormatError) return refuse('invalid_zip', err.message);
      throw err;
    }

    const diskError = await this.checkDisk(summary.uncompressedBytes + req.task_zip.length);
    if (diskError) return refuse('disk', diskError);
    const storeError = this.store.sizeError(req.task_zip.length, 'task zip');
    if (storeError) return refuse('task_store', storeError);
    if (summary.uncompressedBytes > this.config.workspaceQuotaBytes) {
      return refuse('quota', `the task unpacks to ${(summary.uncompressedBytes / 1048576).toFixed(0)} MB; this node's workspace quota is ${(this.config.workspaceQuotaBytes / 1048576).toFixed(0)} MB (WORKSPACE_QUOTA_MB)`);
    }
    const lowDisk = await this.nodeStatus.lowDisk();
    if (lowDisk) return refuse('low_disk', `${lowDisk}; try again later`);

    if (!(await this.nodeStatus.hasExecutor())) return refuse('no_executor', 'no executor is running on this node; try again later');
    const limits = containerLimits(request, node, this.nodeStatus.limitDefaults());
    const reservation = reservationFor(request, limits, node);

    if (cancelled()) return refuse('caller_gave_up', 'the caller gave up before the task was admitted');
    const reserved = await this.ledger.reserve(taskId, reservation, node);
    if (!reserved.ok) return refuse('busy', reserved.message);

    const zipFile = this.zipPath(taskId);
    const rollBack = async () => {
      await this.ledger.release(taskId);
      await Promise.all([fs.rm(zipFile, { force: true }), fs.rm(this.workDir.taskZipPartial(taskId), { force: true }), this.redis.del(this.keys.task(taskId)), this.store.removeTaskZip(taskId)]);
    };
    try {
      await fs.mkdir(path.dirname(zipFile), { recursive: true });
      await fs.writeFile(this.workDir.taskZipPartial(taskId), req.task_zip, { mode: 0o600 });
      await fs.rename(this.workDir.taskZipPartial(taskId), zipFile);
      // TASK_STORE=redis: executors on other machines read it from Redis.
      await this.store.putTaskZip(taskId, zipFile);
      if (cancelled()) {
        await rollBack();
        return refuse('caller_gave_up', 'the caller gave up while the task was being stored');
      }
      const acceptedAt = Date.now();
      await this.redis.hset(this.keys.task(taskId), { acceptedAt, peer });
      const job: TaskJob = { taskId, root: summary.root, entry: summary.entry, request, limits, receivedAt, acceptedAt };
      await this.tasks.add('run', job, { jobId: taskId, removeOnComplete: true, removeOnFail: true });
    } catch (err) {
      await rollBack().catch(() => undefined);
      this.logger.error({ taskId, err }, 'could not store or queue an admitted task');
      return refuse('store_failed', `the node could not store the task: ${errorMessage(err)}`);
    }
    this.logger.info(
      { taskId, peer, entry: summary.entry.file, files: summary.files, bytes: summary.uncompressedBytes, limits },
      'task accepted',
    );
    this.metrics.accepted.inc();
    this.heartbeat.statusChanged();
    const cpus = (limits.nanoCpus / 1e9).toFixed(2);
    const mb = Math.round(limits.memoryBytes / 1024 / 1024);
    return { success: true, message: `task ${taskId} accepted: runs ${summary.entry.file} with ${cpus} CPUs and ${mb} MB` };
  }

  /** The task's files must fit MAX_DISK_GB and the free space under WORK_DIR. */
  private async checkDisk(needBytes: number): Promise<string | null> {
    const capBytes = this.config.MAX_DISK_GB * 1024 ** 3;
    if (needBytes > capBytes) {
      return `the task needs ${(needBytes / 1024 ** 3).toFixed(2)} GB of disk; this node gives tasks at most ${this.config.MAX_DISK_GB} GB (MAX_DISK_GB)`;
    }
    // WORK_DIR is made once, not on every call: a busy node hears ExecuteTask often.
    const st = await fs.statfs(this.config.workDir).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      await fs.mkdir(this.config.workDir, { recursive: true });
      return fs.statfs(this.config.workDir);
    });
    const free = st.bavail * st.bsize;
    if (needBytes > free) {
      return `not enough free disk: the task needs ${(needBytes / 1024 ** 2).toFixed(0)} MB, ${(free / 1024 ** 2).toFixed(0)} MB are free under WORK_DIR`;
    }
    return null;
  }

  /** Records when the reply went out: results are not uploaded sooner than the guard after it. */
  async markReplied(taskId: string): Promise<void> {
    await this.redis.hset(this.keys.task(taskId), 'repliedAt', Date.now());
  }
}
