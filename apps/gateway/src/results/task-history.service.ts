import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { describeCpt, estimateCpt } from '@hivemind/shared/earnings/cpt-estimate';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { ResultJob } from '@hivemind/shared/queue/queues';
import { RefusedResult } from '@hivemind/shared/state/refused-results';
import { RunningTasks } from '@hivemind/shared/state/running-tasks';
import { TaskHistoryEntry, TaskHistoryRepository, UsageAverages } from '@hivemind/shared/state/task-history';
import { zipEntryTail } from '@hivemind/shared/task-format/zip-entry-tail';
import { Ticker } from '@hivemind/shared/util/ticker';
import { errorMessage } from '@hivemind/shared/util/errors';

export type { TaskHistoryEntry };

/**
 * The last TASK_HISTORY_SIZE finished tasks, kept in Redis: status, duration, exit
 * reason, result size, average usage, the CPT estimate and the end of the logs.
 * Keeps a running average of each running task's CPU and memory use from the
 * executor's samples (RunningTasks), and writes an entry when the pool has taken
 * the task's result.
 */
@Injectable()
export class TaskHistoryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly ticker: Ticker;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly running: RunningTasks,
    private readonly repo: TaskHistoryRepository,
  ) {
    this.ticker = new Ticker('usage-average', config.TASK_USAGE_INTERVAL * 1000, () => this.sampleUsage(), (_n, err) =>
      this.logger.debug({ err: errorMessage(err) }, 'usage averaging failed'),
    );
  }

  onApplicationBootstrap(): void {
    this.ticker.start(false);
  }

  onApplicationShutdown(): void {
    this.ticker.stop();
  }

  /** Folds each running task's newest usage sample into its sums. */
  async sampleUsage(): Promise<void> {
    const ttl = Math.ceil(this.config.TASK_TIMEOUT + 86_400);
    for (const [taskId, t] of await this.running.all()) {
      // The first entry (before any sample) carries zeros at usageAt = startedAt.
      if (t.usageAt <= t.startedAt) continue;
      await this.repo.addUsageSample(taskId, t.usageAt, t.cpuPercent, t.memoryPercent, ttl);
    }
  }

  /** Average CPU and memory use of a task over its samples (zeros without any). */
  averages(taskId: string): Promise<UsageAverages> {
    return this.repo.averages(taskId);
  }

  /** Records a task whose result the pool took, or (`given_up`) that the node gave up after refusals. */
  async record(job: ResultJob, zip: Buffer, after?: { delivery: 'uploaded' | 'given_up'; refused: RefusedResult }): Promise<TaskHistoryEntry> {
    const givenUp = after?.delivery === 'given_up';
    await this.sampleUsage().catch(() => undefined);
    const avg = await this.averages(job.taskId);
    const durationSeconds = Math.max(0, (job.finishedAt - job.startedAt) / 1000);
    const cpt = estimateCpt({ durationSeconds, avgCpuPercent: avg.cpu, avgMemoryPercent: avg.memory, avgGpuPercent: 0 });
    let logsTail = '';
    if (this.config.TASK_HISTORY_LOG_KB > 0) {
      logsTail = (await zipEntryTail(zip, 'task_logs.txt', this.config.TASK_HISTORY_LOG_KB * 1024).catch(() => null)) ?? '';
    }
    const entry: TaskHistoryEntry = {
      taskId: job.taskId,
      status: job.status,
      code: job.code,
      reason: job.reason,
      exitCode: job.exitCode,
      receivedAt: job.receivedAt,
      startedAt: job.startedAt,
      finishedAt: job.finishedAt,
      uploadedAt: givenUp ? null : Date.now(),
      durationSeconds,
      queueWaitSeconds: Math.max(0, (job.startedAt - job.receivedAt) / 1000),
      resultBytes: zip.length,
      avgCpuPercent: Math.round(avg.cpu * 100) / 100,
      avgMemoryPercent: Math.round(avg.memory * 100) / 100,
      usageSamples: avg.samples,
      cpt,
      cptExplained: describeCpt(cpt),
      logsTail,
    };
    if (after) {
      const r = after.refused;
      entry.delivery = after.delivery;
      entry.refused = { at: r.refusedAt, until: r.until, refusals: r.refusals, message: r.message };
    }
    await this.repo.append(entry, this.config.TASK_HISTORY_SIZE);
    return entry;
  }

  /** The newest `limit` entries, newest first. */
  async list(limit = this.config.TASK_HISTORY_SIZE): Promise<TaskHistoryEntry[]> {
    return this.repo.list(limit);
  }

  /** The newest entry of one task, or null. */
  async get(taskId: string): Promise<TaskHistoryEntry | null> {
    return (await this.list()).find((e) => e.taskId === taskId) ?? null;
  }

  /** Sum of the CPT estimates over the kept history (the results the pool took). */
  async estimatedTotal(): Promise<{ total: number; tasks: number }> {
    const all = (await this.list()).filter((e) => e.delivery !== 'given_up');
    return { total: all.reduce((s, e) => s + e.cpt.total, 0), tasks: all.length };
  }
}
