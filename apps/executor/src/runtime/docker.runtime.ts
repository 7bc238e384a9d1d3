import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { OutputListener, RunExit, RunningTaskHandle, RunSpec, TaskRuntime, Usage } from './task-runtime.port';

export interface DockerRuntimeOptions {
  /** The default image (Python tasks). */
  image: string;
  /** The image of `run.sh` tasks (default: `image`). */
  shellImage?: string;
  /** Images a task may run in (default: the two above). Others are refused. */
  allowedImages?: string[];
  user: string;
  pidsLimit: number;
  tmpfsMb: number;
  /** Docker network of the requirements.txt install step (default `bridge`). */
  installNetwork?: string;
}

/** Labels every container of ours carries. */
export const LABEL_MANAGED = 'io.hivemind.managed';
export const LABEL_TASK = 'io.hivemind.task-id';
export const LABEL_NODE = 'io.hivemind.node-id';
/** The Redis prefix of the worker instance that owns the container (several can share a daemon). */
export const LABEL_INSTANCE = 'io.hivemind.instance';

const WORKSPACE = '/workspace';

/**
 * Runs a task in a hardened container through the Engine API: no network, no
 * capabilities, no new privileges, read-only root with a small tmpfs /tmp, pids,
 * memory (no swap) and CPU limits, a non-root user, and only the workspace mounted.
 */
export class DockerRuntime implements TaskRuntime {
  readonly name = 'docker' as const;

  constructor(
    private readonly docker: Docker,
    private readonly opts: DockerRuntimeOptions,
  ) {}

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
    const image = spec.entryKind === 'shell' && spec.phase !== 'install' ? (this.opts.shellImage ?? this.opts.image) : this.opts.image;
    const allowed = this.opts.allowedImages ?? [this.opts.image, this.opts.shellImage ?? this.opts.image];
    if (!allowed.includes(image)) throw new Error(`the image ${image} is not on this node's allowlist (TASK_IMAGE_ALLOWLIST)`);
    return image;
  }

  createOptions(spec: RunSpec): Docker.ContainerCreateOptions {
    const install = spec.phase === 'install';
    return {
      name: DockerRuntime.containerName(spec.taskId, spec.phase),
      Image: this.imageFor(spec),
      Cmd: spec.command,
      WorkingDir: WORKSPACE,
      User: this.opts.user,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      Labels: spec.labels,
      // Only the install step gets a network, and only to fetch packages.
      NetworkDisabled: !install,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      OpenStdin: false,
      HostConfig: {
        NetworkMode: install ? (this.opts.installNetwork ?? 'bridge') : 'none',
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${this.opts.tmpfsMb}m` },
        PidsLimit: this.opts.pidsLimit,
        Memory: spec.limits.memoryBytes,
        MemorySwap: spec.limits.memoryBytes,
        NanoCpus: spec.limits.nanoCpus,
        // Exactly the devices allocated to this task (never "all").
        ...(spec.gpus?.length ? { DeviceRequests: [{ Driver: 'nvidia', DeviceIDs: spec.gpus, Capabilities: [['gpu']] }] } : {}),
        Binds: [`${spec.workspace}:${WORKSPACE}:rw`],
        IpcMode: 'private',
        Init: true,
        AutoRemove: false,
        LogConfig: { Type: 'none', Config: {} },
      },
    };
  }

  static containerName(taskId: string, phase: RunSpec['phase'] = 'task'): string {
    return phase === 'install' ? `hivemind-install-${taskId}` : `hivemind-task-${taskId}`;
  }

  async start(spec: RunSpec, onOutput: OutputListener): Promise<RunningTaskHandle> {
    await this.docker.getContainer(DockerRuntime.containerName(spec.taskId, spec.phase)).remove({ force: true }).catch(() => undefined);
    const container = await this.docker.createContainer(this.createOptions(spec));
    try {
      return await this.watch(container, spec.limits.memoryBytes, onOutput, true, Date.now());
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw err;
    }
  }

  async adopt(taskId: string, memoryBytes: number, onOutput: OutputListener): Promise<RunningTaskHandle | null> {
    const container = this.docker.getContainer(DockerRuntime.containerName(taskId));
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
    return this.watch(container, memoryBytes, onOutput, false, startedAt);
  }

  async remove(taskId: string, phase: RunSpec['phase'] = 'task'): Promise<void> {
    await this.docker.getContainer(DockerRuntime.containerName(taskId, phase)).remove({ force: true }).catch(() => undefined);
  }

  /** Attaches to a container's output (starting it if asked), and waits for its end. */
  private async watch(container: Docker.Container, memoryBytes: number, onOutput: OutputListener, startIt: boolean, startedAt: number): Promise<RunningTaskHandle> {
    const stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadWriteStream;
    const out = new PassThrough();
    out.on('data', (c: Buffer) => onOutput(c));
    container.modem.demuxStream(stream, out, out);
    if (startIt) await container.start();
    const streamEnded = new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', () => resolve());
    });

    const done = (async (): Promise<RunExit> => {
      try {
        const res = (await container.wait()) as { StatusCode: number };
        // Give the attach stream a moment to deliver the last bytes.
        await Promise.race([streamEnded, new Promise((r) => setTimeout(r, 2000))]);
        const info = await container.inspect().catch(() => null);
        return { exitCode: res.StatusCode, oomKilled: Boolean(info?.State?.OOMKilled) };
      } catch (err) {
        return { exitCode: null, oomKilled: false, error: `the container failed: ${(err as Error).message}` };
      }
    })();

    let prev: { cpu: number; at: number } | null = null;
    return {
      done,
      startedAt,
      stop: async (graceSec: number) => {
        await container.stop({ t: Math.round(graceSec) }).catch(() => undefined);
      },
      usage: async (): Promise<Usage | null> => {
        const s = (await container.stats({ stream: false, 'one-shot': true } as { stream: false })) as Docker.ContainerStats;
        const cpu = s.cpu_stats?.cpu_usage?.total_usage ?? 0;
        const now = Date.now();
        const cpuPercent = prev && now > prev.at ? Math.max(0, ((cpu - prev.cpu) / 1e6 / (now - prev.at)) * 100) : 0;
        prev = { cpu, at: now };
        const mem = s.memory_stats ?? ({} as Docker.ContainerStats['memory_stats']);
        const stats = (mem.stats ?? {}) as Record<string, number>;
        const cache = stats.total_inactive_file ?? stats.inactive_file ?? 0;
        const used = Math.max(0, (mem.usage ?? 0) - cache);
        const limit = mem.limit || memoryBytes;
        return { cpuPercent, memoryBytes: used, memoryPercent: limit ? (100 * used) / limit : 0 };
      },
    };
  }
}
