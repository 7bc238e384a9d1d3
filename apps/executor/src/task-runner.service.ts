import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { estimateCpt } from '@hivemind/shared/earnings/cpt-estimate';
import { TaskUsageAverage } from '@hivemind/shared/earnings/task-usage';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { ResultJob, TaskJob } from '@hivemind/shared/queue/queues';
import { wantsGpu } from '@hivemind/shared/resources/gpu';
import { RedisKeys, RunningTask } from '@hivemind/shared/queue/redis-keys';
import { entryCommand } from '@hivemind/shared/task-format/entry-point';
import { ExecutionRecord, TaskOutcome, writeResultZip } from '@hivemind/shared/task-format/result-zip';
import { TaskFormatError } from '@hivemind/shared/task-format/task-format.error';
import { TaskLog } from '@hivemind/shared/task-format/task-log';
import { extractZip } from '@hivemind/shared/task-format/zip-extract';
import { TASK_STORE, TaskStore, TaskStoreError } from '@hivemind/shared/task-store/task-store';
import { sleep } from '@hivemind/shared/util/ticker';
import { GpuAllocatorService } from './gpu-allocator.service';
import { OutputSink } from './output-sink';
import { OwnerFreezeService } from './owner-freeze.service';
import { RuntimeService } from './runtime/runtime.service';
import { RunExit, RunningTaskHandle, TaskRuntime } from './runtime/task-runtime.port';
import { WorkspaceQuota } from './workspace/quota';

interface Live {
  handle: RunningTaskHandle | null;
  /** Why the task is being stopped, once it is. */
  stopReason: string | null;
  /** Measured usage while the task ran (for its CPT estimate); null until it starts. */
  usage: TaskUsageAverage | null;
  /** How long the task's process ran, in ms, once it ended (time paused for the owner left out). */
  ranMs: number;
  /** How long it was paused for the owner, in ms. */
  frozenMs: number;
  /** Why the worker killed the task for breaking a limit (e.g. its workspace quota). */
  failReason: string | null;
  /** GPUs allocated to the task. */
  gpus?: string[];
}

export const OWNER_STOP = 'stopped at the request of the task owner';

/** Where the requirements.txt step installs packages, inside the workspace (not packed into the result). */
export const PACKAGES_DIR = '.hivemind-packages';

const exists = (p: string) => fs.stat(p).then(() => true, () => false);

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await fs.lchown(dir, uid, gid);
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await fs.lchown(p, uid, gid);
  }
}

/**
 * Removes a workspace. A task may leave folders without write or search permission,
 * which stop a non-root executor's rm; those are opened up first.
 */
async function removeTree(dir: string): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
    return;
  } catch {
    const openUp = async (d: string): Promise<void> => {
      await fs.chmod(d, 0o700).catch(() => undefined);
      const entries = await fs.readdir(d, { withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isDirectory()) await openUp(path.join(d, e.name));
    };
    await openUp(dir);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Decides the outcome a volunteer and the task's owner will read. */
export function outcomeOf(
  exit: RunExit,
  flags: { stopReason: string | null; failReason?: string | null; timedOut: boolean; timeoutSec: number; memoryBytes: number },
): { status: TaskOutcome; reason: string } {
  if (flags.stopReason) return { status: 'Stopped', reason: flags.stopReason };
  if (flags.failReason) return { status: 'Failed', reason: flags.failReason };
  if (flags.timedOut) return { status: 'Failed', reason: `timed out after ${flags.timeoutSec} s` };
  if (exit.error) return { status: 'Failed', reason: exit.error };
  if (exit.oomKilled) {
    return { status: 'Failed', reason: `out of memory: the task passed its limit of ${Math.round(flags.memoryBytes / 1048576)} MB and was killed` };
  }
  if (exit.exitCode === 0) return { status: 'Success', reason: 'exited with code 0' };
  return { status: 'Failed', reason: `exited with code ${exit.exitCode}` };
}

/**
 * One task's life in the executor: unpack, run in the runtime with timeout and stop,
 * stream output and usage, write the result zip, clean up. Never throws for a task's
 * own failure: every task ends in a result.
 */
@Injectable()
export class TaskRunnerService {
  private readonly live = new Map<string, Live>();

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly runtimes: RuntimeService,
    @Inject(TASK_STORE) private readonly store: TaskStore,
    private readonly freeze: OwnerFreezeService,
    private readonly gpus: GpuAllocatorService,
  ) {}

  get runningCount(): number {
    return this.live.size;
  }

  paths(taskId: string) {
    const w = this.config.workDir;
    return {
      workspace: path.join(w, 'workspaces', taskId),
      logFile: path.join(w, 'logs', `${taskId}.log`),
      resultFile: path.join(w, 'results', `${taskId}.zip`),
      /** Where a zip fetched from the task store (TASK_STORE=redis) lands on this machine. */
      zipHere: path.join(w, 'incoming', `${taskId}.zip`),
    };
  }

  /** Stops a task this executor runs (or will start). Returns false when it is not ours. */
  requestStop(taskId: string, reason = OWNER_STOP): boolean {
    const l = this.live.get(taskId);
    if (!l) return false;
    l.stopReason ??= reason;
    // A task paused for the owner is resumed first, or it could not act on the signal.
    void this.freeze.thaw(taskId).finally(() => l.handle?.stop(this.config.STOP_GRACE_PERIOD));
    return true;
  }

  /** Set by a drain that ran out of time: tasks that start from now on are stopped at once. */
  private stopping: string | null = null;

  /** Stops every task this executor runs, and any it starts later (a drain that ran out of time). */
  stopAll(reason: string): number {
    this.stopping = reason;
    for (const id of [...this.live.keys()]) this.requestStop(id, reason);
    return this.live.size;
  }

  async run(job: TaskJob, executorId: string): Promise<ResultJob> {
    const runtime = this.runtimes.runtime as TaskRuntime;
    const log = this.logger.child({ taskId: job.taskId });
    const { workspace, logFile, resultFile } = this.paths(job.taskId);
    const startedAt = new Date();
    const live: Live = { handle: null, stopReason: this.stopping, usage: null, ranMs: 0, frozenMs: 0, failReason: null };
    this.live.set(job.taskId, live);
    let sink: OutputSink | null = null;
    let exit: RunExit = { exitCode: null, oomKilled: false };
    let timedOut = false;
    let outcome: { status: TaskOutcome; reason: string } | undefined;
    try {
      try {
        await fs.mkdir(path.dirname(logFile), { recursive: true });
        const taskLog = new TaskLog(logFile, this.config.TASK_LOG_HEAD_KB * 1024, this.config.TASK_LOG_TAIL_KB * 1024);
        await taskLog.open();
        // Half the flush interval here; the gateway relays what it reads at once.
        sink = new OutputSink(this.redis, this.keys, job.taskId, taskLog, (this.config.OUTPUT_FLUSH_INTERVAL * 1000) / 2);
        if (await this.redis.exists(this.keys.stop(job.taskId))) live.stopReason ??= OWNER_STOP;
        // An executor that crashed may have left this task's container behind: take it over.
        const adopted = await runtime.adopt(job.taskId, job.limits.memoryBytes, (chunk) => sink?.push(chunk));
        if (adopted) {
          sink.note('resumed by this executor after the one that started the task stopped');
          exit = await this.execute(runtime, job, workspace, sink, live, executorId, () => (timedOut = true), adopted);
          outcome = outcomeOf(exit, { stopReason: live.stopReason, failReason: live.failReason, timedOut, timeoutSec: this.config.TASK_TIMEOUT, memoryBytes: job.limits.memoryBytes });
        } else if (live.stopReason) {
          outcome = { status: 'Stopped', reason: `${live.stopReason} before it started` };
        } else {
          await this.quota.release(job.taskId, workspace);
          await removeTree(workspace);
          const zip = await this.store.taskZipHere(job.taskId, job.zipFile, this.paths(job.taskId).zipHere);
          if (zip.fetched) log.debug({ file: zip.file }, 'task zip fetched from the task store');
          await this.quota.create(job.taskId, workspace, this.config.workspaceQuotaBytes);
          await extractZip(zip.file, job.root, workspace, {
            maxEntries: this.config.ZIP_MAX_ENTRIES,
            maxUncompressedBytes: this.config.ZIP_MAX_UNCOMPRESSED_MB * 1024 * 1024,
          });
          await fs.mkdir(path.join(workspace, 'result'), { recursive: true });
          const owner = runtime.workspaceOwner();
          if (owner) await chownTree(workspace, owner.uid, owner.gid);
          const gpus = await this.gpus.allocate(job.taskId, job.request);
          if ('error' in gpus) {
            outcome = { status: 'Failed', reason: gpus.error };
          } else if (gpus.uuids.length && !runtime.supportsGpu) {
            outcome = { status: 'Failed', reason: 'the task asks for a GPU; the process runtime cannot give one' };
          } else if (gpus.uuids.length) {
            live.gpus = gpus.uuids;
            sink.note(`GPUs: ${gpus.uuids.join(', ')}`);
          }
          const install = outcome ? null : await this.installRequirements(runtime, job, workspace, sink, live);
          if (outcome) {
            // refused above
          } else if (install) {
            exit = install.exit;
            outcome = live.stopReason ? { status: 'Stopped', reason: `${live.stopReason} while its requirements were installed` } : { status: 'Failed', reason: install.reason };
          } else {
            exit = await this.execute(runtime, job, workspace, sink, live, executorId, () => (timedOut = true));
          }
          outcome ??= outcomeOf(exit, {
            stopReason: live.stopReason,
            failReason: live.failReason,
            timedOut,
            timeoutSec: this.config.TASK_TIMEOUT,
            memoryBytes: job.limits.memoryBytes,
          });
        }
      } catch (err) {
        const message = err instanceof TaskFormatError ? err.message : `the executor could not run the task: ${(err as Error).message}`;
        outcome = { status: 'Failed', reason: message };
        log.warn({ err: (err as Error).message }, 'task could not run');
      }
      if (sink) {
        sink.note(`task ${outcome.status.toLowerCase()}: ${outcome.reason}`);
        await sink.close().catch((err: Error) => log.warn({ err: err.message }, 'task log incomplete'));
      }
      const record: ExecutionRecord = {
        taskId: job.taskId,
        status: outcome.status,
        reason: outcome.reason,
        exitCode: exit.exitCode,
        startedAt,
        finishedAt: new Date(),
        nodeId: this.config.NODE_ID || 'unknown',
        entryPoint: job.entry.file,
        runtime: runtime.name,
        cpt: live.usage ? estimateCpt(live.usage.inputs(live.ranMs / 1000)) : undefined,
        frozenSeconds: live.frozenMs / 1000,
      };
      await fs.rm(path.join(workspace, PACKAGES_DIR), { recursive: true, force: true }).catch(() => undefined);
      await this.packResult(workspace, record, logFile, resultFile);
      await this.publishResult(job.taskId, resultFile);
      log.info({ status: outcome.status, reason: outcome.reason, seconds: (record.finishedAt.getTime() - startedAt.getTime()) / 1000 }, 'task finished');
      return {
        taskId: job.taskId,
        resultFile,
        status: outcome.status,
        reason: outcome.reason,
        exitCode: exit.exitCode,
        receivedAt: job.receivedAt,
        startedAt: startedAt.getTime(),
        finishedAt: record.finishedAt.getTime(),
        cpt: record.cpt ? { total: record.cpt.total, ...record.cpt.inputs, pausedSeconds: live.frozenMs / 1000 } : undefined,
      };
    } finally {
      if (wantsGpu(job.request)) await this.gpus.release((t) => t !== job.taskId).catch((err: Error) => log.warn({ err: err.message }, 'GPU not released'));
      // A second run of the same task (a redelivered job) keeps its own entry.
      if (this.live.get(job.taskId) === live) this.live.delete(job.taskId);
    }
  }

  /**
   * Removes a task's container and files, once its result is queued (or it needs no
   * result). Until then, an executor that takes over after a crash can still use them.
   */
  async release(job: TaskJob, keepWorkspace = false): Promise<void> {
    await this.runtimes.runtime?.remove(job.taskId);
    if (keepWorkspace && this.config.FAILED_WORKSPACE_RETENTION > 0) await this.keep(job.taskId);
    await this.cleanup(job);
  }

  /**
   * Moves a failed task's workspace to WORK_DIR/kept (a loop volume's image file as
   * `<task>.img`, else the folder), where the disk guard deletes it after
   * FAILED_WORKSPACE_RETENTION.
   */
  private async keep(taskId: string): Promise<void> {
    const { workspace } = this.paths(taskId);
    const keptDir = path.join(this.config.workDir, 'kept');
    try {
      await fs.mkdir(keptDir, { recursive: true, mode: 0o700 });
      if (!(await exists(workspace))) return;
      const quota = this.quota;
      if (quota.mode === 'loop' && (await exists(quota.imageFile(taskId)))) {
        await quota.unmount(workspace);
        const target = path.join(keptDir, `${taskId}.img`);
        await fs.rm(target, { force: true });
        await fs.rename(quota.imageFile(taskId), target);
        const now = new Date();
        await fs.utimes(target, now, now);
      } else {
        const target = path.join(keptDir, taskId);
        await removeTree(target);
        await fs.rename(workspace, target);
        const now = new Date();
        await fs.utimes(target, now, now);
      }
      this.logger.info({ taskId, keepS: this.config.FAILED_WORKSPACE_RETENTION }, 'failed task workspace kept for debugging');
    } catch (err) {
      this.logger.warn({ taskId, err: (err as Error).message }, 'could not keep the failed task workspace');
    }
  }

  /**
   * A result with no workspace that says why the task could not finish: the last
   * resort when run() itself failed (e.g. a full disk), or for a task whose job was lost.
   */
  async failureFor(taskId: string, reason: string, entryPoint = 'unknown'): Promise<ResultJob> {
    const { logFile, resultFile } = this.paths(taskId);
    const now = new Date();
    if (await fs.stat(resultFile).then((st) => st.isFile(), () => false)) {
      // The real result was written before things went wrong: send that, not a stand-in.
      await this.publishResult(taskId, resultFile);
      return { taskId, resultFile, status: 'Failed', reason: `${reason} (its result was recovered)`, exitCode: null, receivedAt: now.getTime(), startedAt: now.getTime(), finishedAt: now.getTime() };
    }
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'hivemind-empty-'));
    try {
      await writeResultZip({
        workspace: empty,
        record: { taskId, status: 'Failed', reason, exitCode: null, startedAt: now, finishedAt: now, nodeId: this.config.NODE_ID || 'unknown', entryPoint, runtime: this.runtimes.runtime?.name ?? 'none' },
        logFile,
        outFile: resultFile,
      });
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
    await this.publishResult(taskId, resultFile);
    return { taskId, resultFile, status: 'Failed', reason, exitCode: null, receivedAt: now.getTime(), startedAt: now.getTime(), finishedAt: now.getTime() };
  }

  /** Makes the result zip reachable by the gateway (TASK_STORE=redis), riding out Redis blips. */
  private async publishResult(taskId: string, resultFile: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.store.putResult(taskId, resultFile);
        return;
      } catch (err) {
        if (err instanceof TaskStoreError || attempt >= 10) throw err;
        await sleep(Math.min(5000, 250 * 2 ** attempt));
      }
    }
  }

  /**
   * The requirements.txt step: `pip install --target` into the workspace, in its own
   * run that may use the network (index URL and proxy from config). Returns null when
   * there was nothing to do or it worked, else why the task cannot run.
   */
  private async installRequirements(
    runtime: TaskRuntime,
    job: TaskJob,
    workspace: string,
    sink: OutputSink,
    live: Live,
  ): Promise<{ exit: RunExit; reason: string } | null> {
    const c = this.config;
    if (!c.REQUIREMENTS_INSTALL || !(await exists(path.join(workspace, 'requirements.txt')))) return null;
    const inside = runtime.workspacePath(workspace);
    const args = ['python3', '-m', 'pip', 'install', '--no-cache-dir', '--disable-pip-version-check', '--no-input', '--progress-bar', 'off'];
    args.push('--target', path.posix.join(inside, PACKAGES_DIR), '-r', 'requirements.txt');
    if (c.PIP_INDEX_URL) args.push('--index-url', c.PIP_INDEX_URL);
    for (const h of (c.PIP_TRUSTED_HOST ?? '').split(',').map((x) => x.trim()).filter(Boolean)) args.push('--trusted-host', h);
    if (c.PIP_PROXY) args.push('--proxy', c.PIP_PROXY);
    sink.note(`installing requirements.txt: ${args.slice(3).join(' ')}`);
    let tail = '';
    const handle = await runtime.start(
      {
        taskId: job.taskId,
        workspace,
        command: args,
        env: { HOME: '/tmp', TMPDIR: '/tmp', LANG: 'C.UTF-8', PYTHONUNBUFFERED: '1', PIP_ROOT_USER_ACTION: 'ignore' },
        limits: job.limits,
        entryKind: 'python',
        phase: 'install',
        network: true,
      },
      (chunk) => {
        sink.push(chunk);
        tail = (tail + chunk.toString('utf8')).slice(-8192);
      },
    );
    live.handle = handle;
    if (live.stopReason) void handle.stop(c.STOP_GRACE_PERIOD);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void handle.stop(c.STOP_GRACE_PERIOD);
    }, c.INSTALL_TIMEOUT * 1000);
    let exit: RunExit;
    try {
      exit = await handle.done;
    } finally {
      clearTimeout(timer);
      live.handle = null;
      await runtime.remove(job.taskId, 'install');
    }
    if (exit.exitCode === 0 && !exit.error && !live.stopReason && !timedOut) {
      sink.note('requirements installed');
      return null;
    }
    const errors = tail.split('\n').filter((l) => /^ERROR:/.test(l.trim())).map((l) => l.trim());
    const detail = errors.length ? errors.join(' ') : tail.trim().split('\n').slice(-3).join(' ');
    const why = timedOut
      ? `timed out after ${c.INSTALL_TIMEOUT} s (INSTALL_TIMEOUT)`
      : exit.error ?? (exit.oomKilled ? 'ran out of memory' : `pip exited with code ${exit.exitCode}`);
    return { exit, reason: `installing requirements.txt failed (${why}): ${detail.slice(0, 2000) || 'no output'}` };
  }

  private async execute(
    runtime: TaskRuntime,
    job: TaskJob,
    workspace: string,
    sink: OutputSink,
    live: Live,
    executorId: string,
    onTimeout: () => void,
    adopted: RunningTaskHandle | null = null,
  ): Promise<RunExit> {
    const inside = runtime.workspacePath(workspace);
    const handle = adopted ?? await runtime.start(
      {
        taskId: job.taskId,
        workspace,
        command: entryCommand(job.entry),
        env: {
          TASK_ID: job.taskId,
          RESULT_DIR: path.posix.join(inside, 'result'),
          HOME: '/tmp',
          PYTHONUNBUFFERED: '1',
          LANG: 'C.UTF-8',
          // What the install step put there (requirements.txt) is found by imports.
          ...((await exists(path.join(workspace, PACKAGES_DIR))) ? { PYTHONPATH: path.posix.join(inside, PACKAGES_DIR) } : {}),
        },
        limits: job.limits,
        entryKind: job.entry.kind,
        gpus: live.gpus,
      },
      (chunk) => sink.push(chunk),
    );
    live.handle = handle;
    if (live.stopReason || (await this.redis.exists(this.keys.stop(job.taskId)))) {
      live.stopReason ??= OWNER_STOP;
      void handle.stop(this.config.STOP_GRACE_PERIOD);
    }
    const startedAt = handle.startedAt;
    const running: RunningTask = { executorId, startedAt, cpuPercent: 0, memoryPercent: 0, memoryBytes: 0, usageAt: startedAt };
    const usage = (live.usage = new TaskUsageAverage(job.limits.nanoCpus / 1e9));
    await this.redis.hset(this.keys.running, job.taskId, JSON.stringify(running));
    await this.freeze.track(job.taskId, runtime);
    let finished = false;
    let primed = false;
    const usageTimer = setInterval(() => {
      handle
        .usage()
        // A sample that arrives after the end must not bring the task back into `running`.
        .then((u) => {
          if (!u || finished) return null;
          // The first CPU reading has nothing to compare with and says 0: not a measurement.
          if (primed && !this.freeze.isFrozen(job.taskId)) usage.add(u.cpuPercent, u.memoryPercent);
          primed = true;
          return this.redis.hset(this.keys.running, job.taskId, JSON.stringify({ ...running, ...u, usageAt: Date.now() }));
        })
        .catch(() => undefined);
    }, this.config.TASK_USAGE_INTERVAL * 1000);
    const quota = this.quota;
    const quotaMb = Math.round(this.config.workspaceQuotaBytes / 1048576);
    const quotaReason = `workspace quota exceeded: the task wrote more than its ${quotaMb} MB workspace quota (WORKSPACE_QUOTA_MB) and was stopped`;
    let checking = false;
    const quotaTimer =
      quota.mode === 'off'
        ? null
        : setInterval(() => {
            if (checking || live.failReason) return;
            checking = true;
            quota
              .full(workspace, this.config.workspaceQuotaBytes)
              .then((full) => {
                if (!full || finished || live.failReason) return;
                live.failReason = quotaReason;
                sink.note(`${quotaReason.replace(' and was stopped', '')}; stopping`);
                void handle.stop(this.config.STOP_GRACE_PERIOD);
              })
              .catch(() => undefined)
              .finally(() => (checking = false));
          }, quota.mode === 'loop' ? 500 : 2000);
    // Counted from the task's own start, which for an adopted task was before this
    // executor, leaving out the time it was paused for the owner: when the timer fires
    // early because of a pause, it is set again for what is left.
    const limitMs = this.config.TASK_TIMEOUT * 1000;
    const left = () => limitMs - (Date.now() - startedAt - this.freeze.frozenMs(job.taskId));
    const expire = () => {
      if (left() > 0) {
        timeout = setTimeout(expire, left());
        return;
      }
      onTimeout();
      sink.note(`timed out after ${this.config.TASK_TIMEOUT} s; stopping`);
      void this.freeze.thaw(job.taskId).finally(() => handle.stop(this.config.STOP_GRACE_PERIOD));
    };
    let timeout = setTimeout(expire, Math.max(0, left()));
    try {
      const exit = await handle.done;
      // A task that failed on a full workspace before the watcher saw it: say why.
      if (!live.failReason && exit.exitCode !== 0 && quota.mode === 'loop' && (await quota.full(workspace, this.config.workspaceQuotaBytes))) {
        live.failReason = `workspace quota exceeded: the task filled its ${quotaMb} MB workspace quota (WORKSPACE_QUOTA_MB); writes past it failed`;
      }
      return exit;
    } finally {
      finished = true;
      clearInterval(usageTimer);
      if (quotaTimer) clearInterval(quotaTimer);
      clearTimeout(timeout);
      live.frozenMs = await this.freeze.untrack(job.taskId);
      live.ranMs = Math.max(0, Date.now() - startedAt - live.frozenMs);
      await this.redis.hdel(this.keys.running, job.taskId);
    }
  }

  /**
   * Writes the result zip. If the workspace cannot be packed, or packs to more than
   * one gRPC message can carry, the result holds the logs only and says why.
   */
  private async packResult(workspace: string, record: ExecutionRecord, logFile: string, outFile: string): Promise<void> {
    await fs.mkdir(workspace, { recursive: true });
    // Room for the rest of the upload message (task id, token, framing).
    const cap = Math.min(this.config.maxMessageBytes - Math.min(1024 * 1024, this.config.maxMessageBytes / 16), this.store.maxBytes);
    let why: string | null = null;
    try {
      const size = await writeResultZip({ workspace, record, logFile, outFile });
      if (size > cap) why = `the result packs to ${size} bytes, more than the ${cap} bytes one upload can carry (MAX_MESSAGE_MB); only the logs are sent`;
    } catch (err) {
      why = `the workspace could not be packed: ${(err as Error).message}`;
    }
    if (!why) return;
    this.logger.warn({ taskId: record.taskId, why }, 'result without the workspace');
    const empty = await fs.mkdtemp(path.join(this.config.workDir, 'empty-'));
    try {
      await writeResultZip({ workspace: empty, record: { ...record, status: 'Failed', reason: `${record.reason}; ${why}` }, logFile, outFile });
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  }

  private get quota(): WorkspaceQuota {
    return this.runtimes.quota ?? new WorkspaceQuota('off', path.join(this.config.workDir, 'volumes'), this.logger);
  }

  /** Best effort: a leftover is logged, never fatal to the task's result. */
  private async cleanup(job: TaskJob): Promise<void> {
    const { workspace, logFile } = this.paths(job.taskId);
    await this.quota.release(job.taskId, workspace).catch((err: Error) => this.logger.warn({ taskId: job.taskId, err: err.message }, 'task volume not released'));
    const { zipHere } = this.paths(job.taskId);
    const results = await Promise.allSettled([
      removeTree(workspace),
      fs.rm(logFile, { force: true }),
      fs.rm(job.zipFile, { force: true }),
      fs.rm(zipHere, { force: true }),
      this.store.removeTaskZip(job.taskId),
    ]);
    for (const r of results) {
      if (r.status === 'rejected') this.logger.warn({ taskId: job.taskId, err: (r.reason as Error).message }, 'task files not fully removed');
    }
  }
}
