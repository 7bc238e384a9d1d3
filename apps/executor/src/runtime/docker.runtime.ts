import type Docker from 'dockerode';
import { errorMessage } from '@hivemind/shared/util/errors';
import { CgroupSample, CgroupUsage } from './cgroup-usage';
import { DaemonWatch, follow } from './docker-watch';
import { containerName, createOptions, DockerRuntimeOptions, imageFor, LABEL_INSTANCE, LABEL_MANAGED, LABEL_PHASE, LABEL_TASK, WORKSPACE } from './docker-options';
import { ManagedRun, OutputListener, RunningTaskHandle, RunPhase, RunSpec, TaskRuntime, Usage } from './task-runtime.port';

export { isDaemonGone } from './docker-watch';
export type { DockerRuntimeOptions } from './docker-options';
export { LABEL_INSTANCE, LABEL_MANAGED, LABEL_NODE, LABEL_PHASE, LABEL_TASK } from './docker-options';

/** A container's usage from the Engine API's stats (one-shot). */
async function engineStats(container: Docker.Container): Promise<CgroupSample> {
  const s = (await container.stats({ stream: false, 'one-shot': true } as { stream: false })) as Docker.ContainerStats;
  const mem = s.memory_stats ?? ({} as Docker.ContainerStats['memory_stats']);
  const stats = (mem.stats ?? {}) as Record<string, number>;
  const cache = stats.total_inactive_file ?? stats.inactive_file ?? 0;
  return { cpuNs: s.cpu_stats?.cpu_usage?.total_usage ?? 0, memoryBytes: Math.max(0, (mem.usage ?? 0) - cache), limitBytes: mem.limit || null };
}

/** A container that is not there (any more): Docker answers 404. */
function isGone(err: unknown): boolean {
  return (err as { statusCode?: number })?.statusCode === 404 || /No such container|no such image/i.test(errorMessage(err));
}

/**
 * Runs a task in a hardened container through the Engine API (see createOptions), and
 * is the only part of the executor that talks to Docker about containers: pausing,
 * listing and removing this instance's containers, and cleaning up pulled images.
 */
export class DockerRuntime implements TaskRuntime {
  readonly name = 'docker' as const;
  readonly supportsGpu = true;
  readonly supportsPause = true;
  private readonly daemon: DaemonWatch;
  private readonly cgroups = new CgroupUsage();

  constructor(
    private readonly docker: Docker,
    private readonly opts: DockerRuntimeOptions,
  ) {
    this.daemon = new DaemonWatch(docker, opts.daemonWaitMs ?? 120_000);
  }

  workspaceOwner(): { uid: number; gid: number } | null {
    if (process.getuid?.() !== 0) return null;
    const [uid, gid] = this.opts.user.split(':').map(Number);
    return { uid, gid };
  }

  workspacePath(): string {
    return WORKSPACE;
  }

  /** The image a task runs in: by its entry point, and only if the allowlist has it. */
  imageFor(spec: RunSpec): string {
    return imageFor(this.opts, spec);
  }

  createOptions(spec: RunSpec): Docker.ContainerCreateOptions {
    return createOptions(this.opts, spec);
  }

  static containerName(taskId: string, phase: RunPhase = 'task'): string {
    return containerName(taskId, phase);
  }

  private container(taskId: string, phase: RunPhase = 'task'): Docker.Container {
    return this.docker.getContainer(containerName(taskId, phase));
  }

  async start(spec: RunSpec, onOutput: OutputListener): Promise<RunningTaskHandle> {
    const opts = this.createOptions(spec);
    // A container of that name left behind (a run that failed to start): remove it and create again.
    const container = await this.docker.createContainer(opts).catch(async (err: unknown) => {
      if ((err as { statusCode?: number })?.statusCode !== 409) throw err;
      await this.container(spec.taskId, spec.phase).remove({ force: true }).catch(() => undefined);
      return this.docker.createContainer(opts);
    });
    try {
      return await this.watch(container, container.id, spec.limits.memoryBytes, onOutput, true, Date.now());
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw err;
    }
  }

  async adopt(taskId: string, memoryBytes: number, onOutput: OutputListener): Promise<RunningTaskHandle | null> {
    const container = this.container(taskId);
    const info = await container.inspect().catch(() => null);
    if (!info || info.Config?.Labels?.[LABEL_TASK] !== taskId) return null;
    const startedAt = Date.parse(info.State.StartedAt) || Date.now();
    if (!info.State.Running && !info.State.FinishedAt?.startsWith('0001')) {
      // It ended while no executor watched: use how it ended, do not run it again.
      return {
        startedAt,
        done: Promise.resolve({ exitCode: info.State.ExitCode, oomKilled: Boolean(info.State.OOMKilled) }),
        stop: async () => undefined,
        usage: async () => null,
      };
    }
    if (!info.State.Running) {
      // Created but never started: nothing ran; let the caller start afresh.
      await container.remove({ force: true }).catch(() => undefined);
      return null;
    }
    return this.watch(container, info.Id, memoryBytes, onOutput, false, startedAt);
  }

  async remove(taskId: string, phase: RunPhase = 'task'): Promise<void> {
    await this.container(taskId, phase).remove({ force: true }).catch(() => undefined);
  }

  /**
   * `docker pause` / `unpause` (the cgroup freezer). Already in that state counts as
   * done; a container that is gone or not running cannot be paused (false) and is not
   * paused (true). Other errors (the daemon) are thrown.
   */
  async setPaused(taskId: string, paused: boolean): Promise<boolean> {
    const c = this.container(taskId);
    try {
      await (paused ? c.pause() : c.unpause());
      return true;
    } catch (err) {
      const msg = errorMessage(err);
      if (paused && /is already paused/.test(msg)) return true;
      if (!paused && /is not paused/.test(msg)) return true;
      if (/is not running|No such container/.test(msg) || isGone(err)) return !paused;
      throw err;
    }
  }

  async isPaused(taskId: string): Promise<boolean> {
    try {
      return Boolean((await this.container(taskId).inspect()).State?.Paused);
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  /** Containers of this worker instance only: another instance may share the daemon. */
  async listManaged(): Promise<ManagedRun[]> {
    const ours = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${this.opts.instance}`] },
    });
    return ours.map((c) => {
      const labelled = c.Labels?.[LABEL_PHASE];
      const install = labelled ? labelled === 'install' : (c.Names ?? []).some((n) => n.startsWith('/hivemind-install-'));
      return { id: c.Id, taskId: c.Labels?.[LABEL_TASK] ?? null, phase: install ? 'install' : 'task', running: c.State === 'running' };
    });
  }

  async removeManaged(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true });
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }

  /** Dangling images among `imageIds`; Docker itself refuses one a container still uses. */
  async removeUnusedImages(imageIds: string[]): Promise<string[]> {
    if (!imageIds.length) return [];
    const dangling = await this.docker.listImages({ filters: { dangling: ['true'] } });
    const removed: string[] = [];
    for (const img of dangling) {
      if (!imageIds.includes(img.Id)) continue;
      await this.docker.getImage(img.Id).remove().then(
        () => removed.push(img.Id),
        () => undefined,
      );
    }
    return removed;
  }

  /** Attaches to a container's output (starting it if asked), and waits for its end. */
  private async watch(container: Docker.Container, id: string, memoryBytes: number, onOutput: OutputListener, startIt: boolean, startedAt: number): Promise<RunningTaskHandle> {
    const stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadWriteStream;
    const attached = follow(container, stream, onOutput);
    if (startIt) await container.start();

    let stopRequested = false;
    const done = this.daemon.waitForEnd(container, attached, onOutput, () => stopRequested);

    let prev: { cpu: number; at: number } | null = null;
    return {
      done,
      startedAt,
      stop: async (graceSec: number) => {
        stopRequested = true;
        await container.stop({ t: Math.round(graceSec) }).catch(() => undefined);
      },
      usage: async (): Promise<Usage | null> => {
        // The cgroup's files when this host has them; the Engine API's stats otherwise.
        const s = (await this.cgroups.read(id)) ?? (await engineStats(container));
        const now = Date.now();
        const cpuPercent = prev && now > prev.at ? Math.max(0, ((s.cpuNs - prev.cpu) / 1e6 / (now - prev.at)) * 100) : 0;
        prev = { cpu: s.cpuNs, at: now };
        const limit = s.limitBytes || memoryBytes;
        return { cpuPercent, memoryBytes: s.memoryBytes, memoryPercent: limit ? (100 * s.memoryBytes) / limit : 0 };
      },
    };
  }
}
