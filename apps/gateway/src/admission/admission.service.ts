import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { NodeSettingsStore } from '@hivemind/shared/settings/node-settings';
import { ExecuteTaskRequest, ExecuteTaskResponse } from '@hivemind/shared/proto/generated/nodepool';
import { TaskJob } from '@hivemind/shared/queue/queues';
import { checkRequest, containerLimits, reservationFor } from '@hivemind/shared/resources/limits';
import { checkTaskId } from '@hivemind/shared/task-format/task-id';
import { TaskFormatError } from '@hivemind/shared/task-format/task-format.error';
import { DEFAULT_IMAGE_NAME, imageForName } from '@hivemind/shared/task-format/task-manifest';
import { inspectZip } from '@hivemind/shared/task-format/zip-inspect';
import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { RefusedResults } from '@hivemind/shared/state/refused-results';
import { TaskRecords } from '@hivemind/shared/state/task-records';
import { TASK_STORE, TaskStore } from '@hivemind/shared/state/task-store';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import { NodeStatusService } from '../node-status.service';
import { ContentFacts, DRAINING, refuseContent, refuseRequest } from './admission-rules';
import { GatewayMetrics, RefusalKind } from '../metrics/gateway-metrics.service';
import { HeartbeatService } from '../pool/heartbeat.service';
import { TASKS_QUEUE } from '../queues.provider';
import { errorMessage } from '@hivemind/shared/util/errors';

/**
 * Decides whether the node takes a pushed task, and if so stores its zip and queues
 * it. Every refusal says what was wrong; nothing is stored or held for a refused task.
 * The rules are pure functions (admission-rules.ts) over the facts gathered here.
 */
@Injectable()
export class AdmissionService {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly settings: NodeSettingsStore,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(TASKS_QUEUE) private readonly tasks: Queue,
    private readonly ledger: ResourceLedger,
    private readonly refusedResults: RefusedResults,
    private readonly records: TaskRecords,
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
    const taskId = req.task_id;
    const request = { cpuScore: req.cpu_usage, gpuScore: req.gpu_usage, memoryGb: req.memory_gb, gpuMemoryGb: req.gpu_memory_gb };
    const taskIdError = checkTaskId(taskId);
    // A draining node answers without asking Redis (it may be going away too).
    if (this.nodeStatus.draining) return refuse(DRAINING.kind, DRAINING.message);
    const [paused, owner, node, ledger, refusedResultWaiting] = await Promise.all([
      this.nodeStatus.paused(),
      this.nodeStatus.ownerFirst(),
      this.settings.capacity(),
      this.ledger.snapshot(),
      taskIdError ? false : this.refusedResults.has(taskId),
    ]);
    const held = !taskIdError && ledger.held.has(taskId);
    const early = refuseRequest({
      draining: false,
      paused,
      taskId,
      taskIdError,
      cpuOnly: this.config.CPU_ONLY,
      asksGpu: (Number(req.gpu_usage) || 0) > 0 || (Number(req.gpu_memory_gb) || 0) > 0,
      owner,
      fitError: checkRequest(request, node),
      held,
      refusedResultWaiting,
    });
    if (early) return refuse(early.kind, early.message);
    const limits = containerLimits(request, node, this.nodeStatus.limitDefaults());
    const reservation = reservationFor(request, limits, node);
    // A node that is full says so before it reads the zip: a busy node hears ExecuteTask
    // often, and the answer is the same as the reservation's below (which alone decides).
    const room = this.ledger.fits(ledger.totals, reservation, node);
    if (!room.ok) return refuse('busy', room.message);

    // Inspection reads only the zip's central directory.
    const zipBytes = req.task_zip?.length ?? 0;
    let zip: ContentFacts['zip'];
    let summary;
    try {
      summary = await inspectZip(req.task_zip ?? Buffer.alloc(0), {
        maxEntries: this.config.ZIP_MAX_ENTRIES,
        maxUncompressedBytes: this.config.ZIP_MAX_UNCOMPRESSED_MB * 1024 * 1024,
      });
      zip = summary;
    } catch (err) {
      if (!(err instanceof TaskFormatError)) throw err;
      zip = { error: err.message };
    }
    const [freeBytes, lowDisk, hasExecutor] = await Promise.all([this.freeBytes(), this.nodeStatus.lowDisk(), this.nodeStatus.hasExecutor()]);
    const wanted = summary?.manifest?.image;
    const image = wanted ? imageForName(wanted, this.config.namedImages) : null;
    const late = refuseContent({
      zip,
      imageError: image && 'error' in image ? image.error : null,
      zipBytes,
      maxDiskBytes: this.config.MAX_DISK_GB * 1024 ** 3,
      maxDiskGb: this.config.MAX_DISK_GB,
      freeBytes,
      storeError: this.store.sizeError(zipBytes, 'task zip'),
      quotaBytes: this.config.workspaceQuotaBytes,
      lowDisk,
      hasExecutor,
    });
    if (late || !summary) return refuse(late?.kind ?? 'invalid_zip', late?.message ?? 'the task zip could not be read');

    if (cancelled()) return refuse('caller_gave_up', 'the caller gave up before the task was admitted');
    const reserved = await this.ledger.reserve(taskId, reservation, node);
    if (!reserved.ok) return refuse('busy', reserved.message);

    const zipFile = this.zipPath(taskId);
    const rollBack = async () => {
      await this.ledger.release(taskId);
      await Promise.all([fs.rm(zipFile, { force: true }), fs.rm(this.workDir.taskZipPartial(taskId), { force: true }), this.records.remove(taskId), this.store.removeTaskZip(taskId)]);
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
      await this.records.accepted(taskId, acceptedAt, peer);
      const job: TaskJob = {
        taskId,
        root: summary.root,
        entry: summary.entry,
        ...(wanted && wanted !== DEFAULT_IMAGE_NAME ? { image: wanted } : {}),
        request,
        limits,
        receivedAt,
        acceptedAt,
      };
      await this.tasks.add('run', job, { jobId: taskId, removeOnComplete: true, removeOnFail: true });
    } catch (err) {
      await rollBack().catch(() => undefined);
      this.logger.error({ taskId, err }, 'could not store or queue an admitted task');
      return refuse('store_failed', `the node could not store the task: ${errorMessage(err)}`);
    }
    this.logger.info(
      { taskId, peer, entry: summary.entry.file, image: wanted ?? DEFAULT_IMAGE_NAME, files: summary.files, bytes: summary.uncompressedBytes, limits },
      'task accepted',
    );
    this.metrics.accepted.inc();
    this.heartbeat.statusChanged();
    const cpus = (limits.nanoCpus / 1e9).toFixed(2);
    const mb = Math.round(limits.memoryBytes / 1024 / 1024);
    return { success: true, message: `task ${taskId} accepted: runs ${summary.entry.file} with ${cpus} CPUs and ${mb} MB` };
  }

  /** Free bytes under WORK_DIR (made once, not on every call: a busy node hears ExecuteTask often). */
  private async freeBytes(): Promise<number> {
    const st = await fs.statfs(this.config.workDir).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      await fs.mkdir(this.config.workDir, { recursive: true });
      return fs.statfs(this.config.workDir);
    });
    return st.bavail * st.bsize;
  }

  /** Records when the reply went out: results are not uploaded sooner than the guard after it. */
  async markReplied(taskId: string): Promise<void> {
    await this.records.replied(taskId);
  }
}
