import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { estimateCpt } from '@hivemind/shared/earnings/cpt-estimate';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { ResultJob, TaskJob } from '@hivemind/shared/queue/queues';
import { ControlChannel } from '@hivemind/shared/state/control-channel';
import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { OutputStream } from '@hivemind/shared/state/output-stream';
import { wantsGpu } from '@hivemind/shared/resources/gpu';
import { Outcome, outcomes } from '@hivemind/shared/task-format/outcome';
import { ExecutionRecord } from '@hivemind/shared/task-format/result-zip';
import { TaskFormatError } from '@hivemind/shared/task-format/task-format.error';
import { TaskLog } from '@hivemind/shared/task-format/task-log';
import { errorMessage } from '@hivemind/shared/util/errors';
import { sleep } from '@hivemind/shared/util/ticker';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import { GpuAllocatorService } from '../gpu-allocator.service';
import { OutputSink } from '../output-sink';
import { RuntimeService } from '../runtime/runtime.service';
import { RunExit, TaskRuntime } from '../runtime/task-runtime.port';
import { TaskCancelled } from './cancellation';
import { CleanupStep } from './cleanup.step';
import { FallbackResults } from './fallback-result';
import { installRequirements } from './install-requirements.step';
import { LiveTask } from './live-task';
import { PackResultStep } from './pack-result.step';
import { PrepareWorkspaceStep } from './prepare-workspace.step';
import { PublishStep } from './publish.step';
import { OWNER_STOP, RunTaskStep } from './run-task.step';
import { TaskContext } from './task-context';
import { taskImage } from './task-image';

type Phase = 'prepare' | 'install' | 'run';
const WHEN: Record<Phase, 'before it started' | 'while its requirements were installed' | undefined> = {
  prepare: 'before it started',
  install: 'while its requirements were installed',
  run: undefined,
};

/**
 * One task's life in this executor, step by step: prepare the workspace, install its
 * requirements, run it, pack the result, publish it, clean up. Every step has its own
 * budget and takes the task's cancellation (a stop, the timeout, a watchdog, the drain),
 * and a step that fails or runs out of budget ends the task with a result that says
 * which step and why. Never throws for a task's own failure: every task ends in a result.
 */
@Injectable()
export class TaskPipeline {
  private readonly live = new Map<string, LiveTask>();
  /** Set by a drain that ran out of time: tasks that start from now on are stopped at once. */
  private stopping: string | null = null;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly ledger: ResourceLedger,
    private readonly output: OutputStream,
    private readonly control: ControlChannel,
    private readonly workDir: WorkDir,
    private readonly runtimes: RuntimeService,
    private readonly gpus: GpuAllocatorService,
    private readonly prepare: PrepareWorkspaceStep,
    private readonly runStep: RunTaskStep,
    private readonly pack: PackResultStep,
    private readonly publish: PublishStep,
    private readonly cleanup: CleanupStep,
    private readonly fallback: FallbackResults,
  ) {}

  get runningCount(): number {
    return this.live.size;
  }

  /** Stops a task this executor runs (whatever step it is in). False when it is not ours. */
  requestStop(taskId: string, reason = OWNER_STOP): boolean {
    const l = this.live.get(taskId);
    if (!l) return false;
    l.cancel(outcomes.stopped(reason));
    return true;
  }

  /** Stops every task this executor runs, and any it starts later (a drain that ran out of time). */
  stopAll(reason: string): number {
    this.stopping = reason;
    for (const id of [...this.live.keys()]) this.requestStop(id, reason);
    return this.live.size;
  }

  /**
   * The drain: lets running tasks finish for up to `timeoutMs`, then stops the rest
   * (whatever step they are in: their results say Stopped) and waits for their results.
   */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (this.runningCount) this.logger.info({ running: this.runningCount, drainTimeoutS: timeoutMs / 1000 }, 'draining');
    while (this.runningCount > 0 && Date.now() < deadline) await sleep(200);
    const left = this.stopAll('stopped because the node is shutting down');
    if (left) this.logger.warn({ stopped: left }, 'drain timeout reached; stopping the remaining tasks');
  }

  /**
   * A job from the tasks queue, from its redelivery checks to its clean-up.
   * @param firstStart this is the job's first start (BullMQ's attemptsStarted is 1): no
   *   executor ran it before, so there is no container of ours to take over and the Engine
   *   API is not asked for one. (A container of an earlier task with the same id shows as
   *   a name conflict when the task's is created, and is removed then.)
   */
  async handle(job: TaskJob, token: string, executorId: string, firstStart = false): Promise<void> {
    const { taskId } = job;
    // A redelivered job (its executor died) whose result was already queued, or whose
    // task the node no longer holds, has nothing left to do but tidy up. One whose
    // result an earlier holder recorded but did not queue gets that result queued.
    if ((await this.publish.queued(taskId)) || !(await this.ledger.holds(taskId))) {
      this.logger.info({ taskId }, 'task already delivered; not running it again');
      return this.cleanup.run(taskId);
    }
    const earlier = await this.publish.recorded(taskId);
    if (earlier) {
      this.logger.info({ taskId }, 'task finished under an earlier executor; queueing its recorded result');
      await this.publish.queue(earlier);
      return this.cleanup.run(taskId);
    }
    let result: ResultJob;
    try {
      result = await this.execute(job, executorId, firstStart);
    } catch (err) {
      this.logger.error({ taskId, err: errorMessage(err) }, 'task run failed; sending a failure result');
      try {
        result = await this.fallback.failureFor(taskId, outcomes.executorFailed(`it failed while finishing the task: ${errorMessage(err)}`), job.entry.file);
      } catch (err2) {
        // Nothing can be written: free the task's share so the node does not stay full.
        await this.ledger.release(taskId);
        throw new UnrecoverableError(`no result could be written for ${taskId}: ${errorMessage(err2)}`);
      }
    }
    // One result per task, from a holder of the job's lock: an executor presumed dead
    // whose lock lapsed is fenced off and leaves everything to the one that took over.
    const delivered = await this.publish.deliver(result, token);
    if (delivered === 'stale') return void this.logger.warn({ taskId }, 'this executor lost the job lock while the task ran; another executor owns it now, dropping our result');
    if (delivered === 'released') return void this.logger.warn({ taskId }, 'the node no longer holds this task; dropping our result');
    // A failed task's workspace is kept for FAILED_WORKSPACE_RETENTION, for debugging.
    await this.cleanup.run(taskId, delivered.status === 'Failed');
  }

  /** Runs the task's steps and packs its result; returns the result to deliver. */
  private async execute(job: TaskJob, executorId: string, firstStart: boolean): Promise<ResultJob> {
    const runtime = this.runtimes.runtime as TaskRuntime;
    const log = this.logger.child({ taskId: job.taskId });
    const paths = this.workDir.taskFiles(job.taskId);
    const live = new LiveTask(job.taskId);
    if (this.stopping) live.cancel(outcomes.stopped(this.stopping));
    this.live.set(job.taskId, live);
    let sink: OutputSink | null = null;
    let exit: RunExit = { exitCode: null, oomKilled: false };
    let outcome: Outcome;
    let phase: Phase = 'prepare';
    try {
      try {
        await fs.mkdir(path.dirname(paths.log), { recursive: true });
        const taskLog = new TaskLog(paths.log, this.config.TASK_LOG_HEAD_KB * 1024, this.config.TASK_LOG_TAIL_KB * 1024);
        await taskLog.open();
        // Half the flush interval here; the gateway relays what it reads at once.
        sink = new OutputSink(this.output, job.taskId, taskLog, (this.config.OUTPUT_FLUSH_INTERVAL * 1000) / 2);
        const ctx: TaskContext = { job, live, runtime, sink, log, paths, executorId };
        if (await this.control.stopRequested(job.taskId)) live.cancel(outcomes.stopped(OWNER_STOP));
        // An executor that crashed may have left this task's container behind: take it over.
        const adopted = firstStart ? null : await runtime.adopt(job.taskId, job.limits.memoryBytes, (chunk) => sink?.push(chunk));
        if (adopted) {
          phase = 'run';
          sink.note('resumed by this executor after the one that started the task stopped');
          ({ exit, outcome } = await this.runStep.run(ctx, adopted));
        } else {
          live.signal.throwIfAborted();
          const refused = (await this.prepare.run(ctx)) ?? ((phase = 'install'), await this.install(ctx));
          if (refused) outcome = refused;
          else {
            phase = 'run';
            ({ exit, outcome } = await this.runStep.run(ctx));
          }
        }
      } catch (err) {
        outcome = this.outcomeOfError(err, phase);
        if (!(err instanceof TaskCancelled) && !(err instanceof TaskFormatError)) log.warn({ err: errorMessage(err), phase }, 'task could not run');
      }
      live.finishing();
      if (sink) {
        sink.note(`task ${outcome.status.toLowerCase()}: ${outcome.reason}`);
        await sink.close().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'task log incomplete'));
      }
      const record: ExecutionRecord = {
        taskId: job.taskId,
        status: outcome.status,
        reason: outcome.reason,
        exitCode: exit.exitCode,
        startedAt: live.startedAt,
        finishedAt: new Date(),
        nodeId: this.config.NODE_ID || 'unknown',
        entryPoint: job.entry.file,
        runtime: runtime.name,
        cpt: live.usage ? estimateCpt(live.usage.inputs(live.ranMs / 1000)) : undefined,
        frozenSeconds: live.frozenMs / 1000,
      };
      outcome = await this.pack.run({ taskId: job.taskId, workspace: paths.workspace, logFile: paths.log, outFile: paths.result, record, outcome, signal: live.signal });
      await this.publish.putResult(job.taskId);
      log.info({ status: outcome.status, code: outcome.code, seconds: (record.finishedAt.getTime() - live.startedAt.getTime()) / 1000 }, 'task finished');
      const cpt = record.cpt ? { total: record.cpt.total, ...record.cpt.inputs, pausedSeconds: live.frozenMs / 1000 } : undefined;
      return { taskId: job.taskId, status: outcome.status, code: outcome.code, reason: outcome.reason, exitCode: exit.exitCode, receivedAt: job.receivedAt, startedAt: live.startedAt.getTime(), finishedAt: record.finishedAt.getTime(), cpt };
    } finally {
      if (wantsGpu(job.request)) await this.gpus.release((t) => t !== job.taskId).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'GPU not released'));
      // A second run of the same task (a redelivered job) keeps its own entry.
      if (this.live.get(job.taskId) === live) this.live.delete(job.taskId);
    }
  }

  private install(ctx: TaskContext): Promise<Outcome | null> {
    const image = taskImage(ctx.job, this.config, ctx.runtime);
    return installRequirements({
      taskId: ctx.job.taskId,
      workspace: ctx.paths.workspace,
      runtime: ctx.runtime,
      limits: ctx.job.limits,
      ...('image' in image && image.image ? { image: image.image } : {}),
      config: this.config,
      note: (line) => ctx.sink.note(line),
      push: (chunk) => ctx.sink.push(chunk),
      signal: ctx.live.signal,
    });
  }

  private outcomeOfError(err: unknown, phase: Phase): Outcome {
    if (err instanceof TaskCancelled) {
      const o = err.outcome;
      return o.code === 'stopped' && WHEN[phase] ? { ...o, reason: `${o.reason} ${WHEN[phase]}` } : o;
    }
    if (err instanceof TaskFormatError) return outcomes.invalidTask(err.message);
    return outcomes.executorFailed(errorMessage(err));
  }
}
