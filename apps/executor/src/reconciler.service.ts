import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { openQueue, QueueName, resultJobOptions } from '@hivemind/shared/queue/queues';
import { Executors } from '@hivemind/shared/state/executors';
import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { RefusedResults } from '@hivemind/shared/state/refused-results';
import { RunningTasks } from '@hivemind/shared/state/running-tasks';
import { TaskRecords } from '@hivemind/shared/state/task-records';
import { TASK_STORE, TaskStore } from '@hivemind/shared/state/task-store';
import { outcomes } from '@hivemind/shared/task-format/outcome';
import { errorMessage } from '@hivemind/shared/util/errors';
import { Ticker } from '@hivemind/shared/util/ticker';
import { GpuAllocatorService } from './gpu-allocator.service';
import { FallbackResults } from './pipeline/fallback-result';
import { RuntimeService } from './runtime/runtime.service';
import { PROBE } from './workspace/quota';
import { removeTree } from './workspace/remove-tree';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';

/** A held task younger than this may still be between its reservation and its job. */
const ADMISSION_GRACE_MS = 60_000;
const STALE_EXECUTOR_MS = 30_000;
/** An executor's start-up probe takes well under a second; one older than this was left by a crash. */
const PROBE_GRACE_MS = 10 * 60_000;

export interface ReconcileReport {
  containersRemoved: string[];
  filesRemoved: string[];
  lostTasks: string[];
  staleRunning: string[];
  executorsPruned: string[];
}

/**
 * Puts things right after crashes, at start and every RECONCILE_INTERVAL:
 * - containers of ours whose task the node no longer holds are removed (a task still
 *   held keeps its container: the executor its job goes to adopts it);
 * - workspaces, zips and logs of tasks no longer held are deleted;
 * - `running` entries left by executors that stopped beating are dropped;
 * - a held task with neither a task job nor a result job (its job failed for good) gets
 *   a failure result, so the pool hears of it and its share is freed after upload;
 * - executors whose beat is EXECUTOR_PRUNE_MS old (crashed) leave the executors hash.
 * The result of a task the pool refused (RefusedResults) is kept although its slot is free.
 */
@Injectable()
export class ReconcilerService implements OnApplicationShutdown {
  private readonly ticker: Ticker;
  private inFlight: Promise<ReconcileReport> | null = null;
  private readonly tasks: Queue;
  private readonly results: Queue;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly ledger: ResourceLedger,
    private readonly refused: RefusedResults,
    private readonly executors: Executors,
    private readonly running: RunningTasks,
    private readonly records: TaskRecords,
    private readonly runtimes: RuntimeService,
    private readonly failures: FallbackResults,
    @Inject(TASK_STORE) private readonly store: TaskStore,
    private readonly gpus: GpuAllocatorService,
    private readonly workDir: WorkDir,
  ) {
    this.tasks = openQueue(QueueName.Tasks, config, 'executor-reconciler', logger);
    this.results = openQueue(QueueName.Results, config, 'executor-reconciler', logger);
    this.ticker = new Ticker('reconcile', config.RECONCILE_INTERVAL * 1000, async () => void (await this.reconcile()), (_n, err) =>
      this.logger.warn({ err: errorMessage(err) }, 'reconcile failed'),
    );
  }

  start(): void {
    this.ticker.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.ticker.stop();
    await Promise.all([this.tasks.close(), this.results.close()]);
  }

  private async jobAlive(queue: Queue, taskId: string): Promise<boolean> {
    const job = await Job.fromId(queue, taskId);
    if (!job) return false;
    const state = await job.getState();
    return state !== 'failed' && state !== 'unknown';
  }

  /** A large zip may take the gateway a while to store: wait while its file still grows. */
  private async zipBeingWritten(taskId: string): Promise<boolean> {
    const st = await fs.stat(this.workDir.taskZipPartial(taskId)).catch(() => null);
    // A gateway on another machine (TASK_STORE=redis) may still be putting it into Redis.
    return Boolean(st && Date.now() - st.mtimeMs < ADMISSION_GRACE_MS) || (await this.store.storing(taskId));
  }

  /** One pass at a time: a pass asked for while one runs (the disk guard's, say) is that one. */
  reconcile(): Promise<ReconcileReport> {
    this.inFlight ??= this.pass().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async pass(): Promise<ReconcileReport> {
    const report: ReconcileReport = { containersRemoved: [], filesRemoved: [], lostTasks: [], staleRunning: [], executorsPruned: [] };
    const held = await this.ledger.entries();
    // Read after the ledger: a refused result is listed before its slot is freed, so a
    // task missing from this ledger snapshot and still refused is in this set.
    const refused = await this.refused.taskIds();

    // Only this worker instance's runs (another instance may share the Docker daemon).
    for (const run of (await this.runtimes.runtime?.listManaged()) ?? []) {
      if (run.taskId && (held.has(run.taskId) || (await this.ledger.holds(run.taskId)))) continue;
      await this.runtimes.runtime?.removeManaged(run.id).catch(() => undefined);
      report.containersRemoved.push(run.taskId ?? run.id);
    }

    for (const dir of ['workspaces', 'incoming', 'logs', 'results', 'volumes'] as const) {
      for (const name of await fs.readdir(this.workDir.folder(dir)).catch(() => [] as string[])) {
        const file = path.join(this.workDir.folder(dir), name);
        // An executor's start-up probe (a volume of its own for a moment); one left by a crash goes after a while.
        if (dir === 'volumes' && name.startsWith(PROBE)) {
          const st = await fs.lstat(file).catch(() => null);
          if (!st || Date.now() - st.mtimeMs < PROBE_GRACE_MS) continue;
          if (st.isDirectory()) await this.runtimes.quota?.release(name, file).catch(() => undefined);
        }
        const owner = WorkDir.ownerOf(dir, name);
        // Checked again now: a task admitted since the snapshot is held before its files exist.
        if (owner && (held.has(owner) || (await this.ledger.holds(owner)))) continue;
        if (owner && dir === 'results' && refused.has(owner)) continue;
        // A workspace may be on a loop volume (a slot's folder, or a volume of its own): freed first.
        if (dir === 'workspaces') await this.runtimes.quota?.release(name, path.join(this.workDir.folder(dir), name)).catch(() => undefined);
        // Whatever a task left (deeper than PATH_MAX, closed folders): a failure is logged and tried again next time.
        try {
          await removeTree(file);
          report.filesRemoved.push(`${dir}/${name}`);
        } catch (err) {
          this.logger.warn({ file: `${dir}/${name}`, err: errorMessage(err) }, 'leftover not removed');
        }
      }
    }

    // GPUs held by tasks the node no longer holds are free again.
    const heldNow = await this.ledger.entries();
    await this.gpus.release((taskId) => heldNow.has(taskId));

    report.executorsPruned = await this.executors.prune();
    const beats = await this.executors.all();
    const alive = new Set(beats.filter((b) => Date.now() - b.seenAt < STALE_EXECUTOR_MS).map((b) => b.executorId));
    const running = await this.running.all();
    // An entry that does not parse names no live executor either.
    for (const taskId of await this.running.taskIds()) {
      const executorId = running.get(taskId)?.executorId;
      if (executorId && alive.has(executorId) && held.has(taskId)) continue;
      await this.running.remove(taskId);
      report.staleRunning.push(taskId);
    }

    const now = await this.ledger.now();
    for (const [taskId, r] of held) {
      if (now - (r.at ?? 0) < ADMISSION_GRACE_MS) continue;
      if (await this.zipBeingWritten(taskId)) continue;
      if ((await this.jobAlive(this.tasks, taskId)) || (await this.jobAlive(this.results, taskId))) continue;
      if (!(await this.records.isReplied(taskId))) {
        // The gateway died before it told the pool "accepted": the pool still has the
        // task pending and will offer it again, so only the reservation goes.
        await this.ledger.release(taskId);
        await this.records.remove(taskId);
        report.lostTasks.push(`${taskId} (never accepted; released)`);
        continue;
      }
      const result = await this.failures.failureFor(taskId, outcomes.lost('the task was lost: its executor stopped and the task could not be recovered'));
      await this.results.add('upload', result, resultJobOptions(taskId));
      report.lostTasks.push(taskId);
    }

    if (report.containersRemoved.length || report.filesRemoved.length || report.lostTasks.length || report.staleRunning.length || report.executorsPruned.length) {
      this.logger.info(report, 'reconciled');
    }
    return report;
  }
}
