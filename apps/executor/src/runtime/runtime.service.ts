import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { errorMessage } from '@hivemind/shared/util/errors';
import { sleep } from '@hivemind/shared/util/ticker';
import { DockerEngine } from './docker-engine';
import { DockerRuntime } from './docker.runtime';
import { bwrapWorks, ProcessRuntime } from './process.runtime';
import { TaskRuntime } from './task-runtime.port';
import { WorkspaceQuota } from '../workspace/quota';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';

export type DockerState = 'available' | 'unavailable' | 'disabled';

/** The uid:gid tasks run as: TASK_USER when the executor is root, else the executor's own. */
export function taskUser(config: WorkerConfig): { uid: number; gid: number } {
  if (process.getuid?.() === 0) {
    const [uid, gid] = config.TASK_USER.split(':').map(Number);
    return { uid, gid };
  }
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

/** Whether `uid` can reach `dir`: every existing parent folder searchable by it. */
async function traversable(dir: string, user: { uid: number; gid: number }): Promise<boolean> {
  let d = path.resolve(dir);
  for (;;) {
    const st = await fs.stat(d).catch(() => null);
    if (st) {
      const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
      if (!(st.mode & bit)) return false;
    }
    const up = path.dirname(d);
    if (up === d) return true;
    d = up;
  }
}

/**
 * Picks the task runtime once its dependencies answer: Docker with the task image
 * present, or, when Docker is unavailable and ALLOW_PROCESS_RUNTIME=true, plain
 * processes. Until then it keeps trying and says what is missing.
 */
@Injectable()
export class RuntimeService implements OnApplicationShutdown {
  runtime: TaskRuntime | null = null;
  docker: DockerState;
  problem: string | null = null;
  /** How workspaces are bounded; decided once, before the first task. */
  quota: WorkspaceQuota | null = null;
  /** Ids of images this executor pulled (its disk clean-up may remove them once dangling). */
  readonly pulled: string[] = [];
  private closed = false;
  private readonly engine: DockerEngine;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.docker = config.DOCKER_ENABLED ? 'unavailable' : 'disabled';
    this.engine = new DockerEngine(config.DOCKER_SOCKET);
  }

  /** One attempt; returns the runtime or null with `problem` set. */
  async tryResolve(): Promise<TaskRuntime | null> {
    const c = this.config;
    if (!this.quota) {
      this.quota = await WorkspaceQuota.detect(c.WORKSPACE_QUOTA, new WorkDir(c.workDir).volumes(), this.logger, c.executorConcurrency);
      this.logger.info({ mode: this.quota.mode, quotaMb: Math.round(c.workspaceQuotaBytes / 1048576) }, 'workspace quota');
    }
    if (c.DOCKER_ENABLED) {
      try {
        await this.engine.ping();
      } catch (err) {
        this.docker = 'unavailable';
        if (c.ALLOW_PROCESS_RUNTIME) return await this.useProcess(`Docker is not reachable at ${c.DOCKER_SOCKET} (${errorMessage(err)})`);
        this.problem = `the Docker daemon is not reachable at ${c.DOCKER_SOCKET} (${errorMessage(err)}); start it, or set ALLOW_PROCESS_RUNTIME=true to run tasks as plain processes`;
        return null;
      }
      this.docker = 'available';
      const missing = await this.missingImages();
      if (missing) {
        this.problem = missing;
        return null;
      }
      this.docker = 'available';
      const { uid, gid } = taskUser(c);
      this.problem = null;
      return (this.runtime = this.engine.runtime({
        image: c.taskImages.python,
        shellImage: c.taskImages.shell,
        allowedImages: c.allowedImages,
        user: `${uid}:${gid}`,
        pidsLimit: c.TASK_PIDS_LIMIT,
        tmpfsMb: c.TASK_TMPFS_MB,
        daemonWaitMs: c.DOCKER_RESTART_WAIT * 1000,
        installNetwork: c.INSTALL_NETWORK,
        nodeId: c.NODE_ID,
        instance: c.REDIS_PREFIX,
      }));
    }
    if (c.ALLOW_PROCESS_RUNTIME) return await this.useProcess('DOCKER_ENABLED=false');
    this.problem = 'DOCKER_ENABLED=false and ALLOW_PROCESS_RUNTIME is not true: this executor has no way to run tasks';
    return null;
  }

  /**
   * Checks that the default images and those of TASK_IMAGES exist, pulling a missing one when TASK_IMAGE_PULL
   * allows (and a registry answers). Returns what is wrong, or null.
   */
  async missingImages(): Promise<string | null> {
    const c = this.config;
    // The images of TASK_IMAGES too: a node that offers an image must have it.
    for (const image of new Set([c.taskImages.python, c.taskImages.shell, ...Object.values(c.namedImages)])) {
      if (await this.engine.imageId(image)) continue;
      let pullError = 'pulling is off (TASK_IMAGE_PULL=false)';
      if (c.TASK_IMAGE_PULL) {
        this.logger.info({ image }, 'task image missing; pulling it');
        try {
          await this.engine.pull(image);
          const id = await this.engine.imageId(image);
          if (id) this.pulled.push(id);
          this.logger.info({ image, id }, 'task image pulled');
          continue;
        } catch (err) {
          pullError = `pulling it failed: ${errorMessage(err).trim().split('\n')[0]}`;
        }
      }
      return `the task image ${image} is missing and ${pullError}; build it with scripts/build-task-image.sh (or docker build docker/task-runtime)`;
    }
    return null;
  }

  /** Resolves when the Docker daemon answers; rejects with why it does not (health checks). */
  async ping(): Promise<void> {
    await this.engine.ping();
  }

  /** Whether the runtime in use needs Docker (a process runtime works on without it). */
  get usesDocker(): boolean {
    return this.runtime instanceof DockerRuntime;
  }

  private async useProcess(why: string): Promise<TaskRuntime | null> {
    const c = this.config;
    let user = process.getuid?.() === 0 ? taskUser(c) : undefined;
    const sandbox = await this.processSandbox();
    if (!sandbox) return null;
    if (user && sandbox === 'none' && !(await traversable(new WorkDir(c.workDir).folder('workspaces'), user))) {
      this.logger.warn({ workDir: c.workDir, user }, `TASK_USER cannot reach WORK_DIR (a parent folder lacks o+x): tasks run as the executor's own user`);
      user = undefined;
    }
    this.logger.warn({ why, sandbox }, sandbox === 'bwrap'
      ? 'running tasks as processes in bubblewrap (ALLOW_PROCESS_RUNTIME): weaker isolation than Docker'
      : 'running tasks as plain processes without a sandbox (PROCESS_SANDBOX_FORCE_NONE): unsafe, a task can outlive itself');
    this.problem = null;
    return (this.runtime = new ProcessRuntime({ sandbox, user, pidsLimit: user ? c.TASK_PIDS_LIMIT : undefined, maxFileBytes: c.workspaceQuotaBytes }));
  }

  /**
   * The process runtime's sandbox: bubblewrap, or `none` only when PROCESS_SANDBOX_FORCE_NONE
   * says so (without a pid namespace a task's processes can escape its stop and outlive
   * it). Null with `problem` set when neither may be used.
   */
  private async processSandbox(): Promise<'bwrap' | 'none' | null> {
    const c = this.config;
    const unsafe = 'without a sandbox a task\'s processes can escape its stop (setsid) and outlive it, as TASK_USER';
    if (c.PROCESS_SANDBOX === 'none') {
      if (c.PROCESS_SANDBOX_FORCE_NONE) return 'none';
      this.problem = `PROCESS_SANDBOX=none is refused: ${unsafe}; install bubblewrap and set PROCESS_SANDBOX=auto, or set PROCESS_SANDBOX_FORCE_NONE=true to accept the risk (unsafe)`;
      return null;
    }
    if (await bwrapWorks()) return 'bwrap';
    const missing = 'bubblewrap is not installed or cannot make a sandbox here (apt-get install bubblewrap; user namespaces must be allowed)';
    if (c.PROCESS_SANDBOX === 'bwrap') {
      this.problem = `PROCESS_SANDBOX=bwrap but ${missing}`;
      return null;
    }
    if (c.PROCESS_SANDBOX_FORCE_NONE) return 'none';
    this.problem = `the process runtime needs bubblewrap and ${missing}; ${unsafe}. Set PROCESS_SANDBOX_FORCE_NONE=true to run tasks without it anyway (unsafe)`;
    return null;
  }

  /** Waits until a runtime is ready (or the app closes). */
  async resolve(retryMs = 5000): Promise<TaskRuntime | null> {
    let lastProblem: string | null = null;
    while (!this.closed) {
      const rt = await this.tryResolve();
      if (rt) return rt;
      if (this.problem !== lastProblem) this.logger.error({ problem: this.problem }, 'executor not ready');
      lastProblem = this.problem;
      await sleep(retryMs);
    }
    return null;
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    // The volume formatted ahead and the slots no task uses are not needed any more (a
    // running task's slot stays for the executor that takes the task over).
    await this.quota?.dropUnused().catch(() => undefined);
  }
}
