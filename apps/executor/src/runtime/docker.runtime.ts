import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { OutputListener, RunExit, RunningTaskHandle, RunSpec, TaskRuntime, Usage } from './task-runtime.port';

export interface DockerRuntimeOptions {
  image: string;
  user: string;
  pidsLimit: number;
  tmpfsMb: number;
}

/** Labels every container of ours carries. */
export const LABEL_MANAGED = 'io.hivemind.managed';
export const LABEL_TASK = 'io.hivemind.task-id';
export const LABEL_NODE = 'io.hivemind.node-id';

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

  workspacePath(): string {
    return WORKSPACE;
  }

  createOptions(spec: RunSpec): Docker.ContainerCreateOptions {
    return {
      name: `hivemind-task-${spec.taskId}`,
      Image: this.opts.image,
      Cmd: spec.command,
      WorkingDir: WORKSPACE,
      User: this.opts.user,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      Labels: spec.labels,
      NetworkDisabled: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      OpenStdin: false,
      HostConfig: {
        NetworkMode: 'none',
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${this.opts.tmpfsMb}m` },
        PidsLimit: this.opts.pidsLimit,
        Memory: spec.limits.memoryBytes,
        MemorySwap: spec.limits.memoryBytes,
        NanoCpus: spec.limits.nanoCpus,
        Binds: [`${spec.workspace}:${WORKSPACE}:rw`],
        IpcMode: 'private',
        Init: true,
        AutoRemove: false,
        LogConfig: { Type: 'none', Config: {} },
      },
    };
  }

  async start(spec: RunSpec, onOutput: OutputListener): Promise<RunningTaskHandle> {
    const existing = this.docker.getContainer(`hivemind-task-${spec.taskId}`);
    await existing.remove({ force: true }).catch(() => undefined);
    const container = await this.docker.createContainer(this.createOptions(spec));
    const remove = () => container.remove({ force: true }).catch(() => undefined);
    let stream: NodeJS.ReadWriteStream;
    try {
      stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadWriteStream;
      const out = new PassThrough();
      out.on('data', (c: Buffer) => onOutput(c));
      container.modem.demuxStream(stream, out, out);
      await container.start();
    } catch (err) {
      await remove();
      throw err;
    }
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
      } finally {
        await remove();
      }
    })();

    let prev: { cpu: number; at: number } | null = null;
    return {
      done,
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
        const limit = mem.limit || spec.limits.memoryBytes;
        return { cpuPercent, memoryBytes: used, memoryPercent: limit ? (100 * used) / limit : 0 };
      },
    };
  }
}
