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
  /** How long a task waits for a restarting Docker daemon before it fails (ms). */
  daemonWaitMs?: number;
  /** Docker network of the requirements.txt install step (default `bridge`). */
  installNetwork?: string;
}

/** Errors that mean the daemon went away, not that the container failed. */
export function isDaemonGone(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return ['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE'].includes(e?.code ?? '') || /socket hang up|connect E|closed/i.test(e?.message ?? '');
}

/** How a task that outlived a daemon restart ended: a clean exit stands; anything else says why. */
function afterRestart(exit: RunExit): RunExit {
  if (exit.exitCode === 0 || exit.oomKilled) return exit;
  return { ...exit, error: `the Docker daemon restarted while the task ran; its container ended with exit code ${exit.exitCode}` };
}

/** A container's attached output stream and when it ends. */
interface Attached {
  stream: NodeJS.ReadWriteStream;
  ended: Promise<void>;
}

/** Demultiplexes a container's attach stream into the listener. */
function follow(container: Docker.Container, stream: NodeJS.ReadWriteStream, onOutput: OutputListener): Attached {
  const out = new PassThrough();
  out.on('data', (c: Buffer) => onOutput(c));
  container.modem.demuxStream(stream, out, out);
  const ended = new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  return { stream, ended };
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
  /** Moves on each time the daemon's event stream breaks (see watchDaemon). */
  private epoch = 0;
  private watchingDaemon = false;
  private readonly epochWaiters = new Set<() => void>();

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
    const network = spec.network === true;
    return {
      name: DockerRuntime.containerName(spec.taskId, spec.phase),
      Image: this.imageFor(spec),
      Cmd: spec.command,
      WorkingDir: WORKSPACE,
      User: this.opts.user,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      Labels: spec.labels,
      // Only the install step's download gets a network, and only to fetch packages.
      NetworkDisabled: !network,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      OpenStdin: false,
      HostConfig: {
        NetworkMode: network ? (this.opts.installNetwork ?? 'bridge') : 'none',
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

  /**
   * Waits for a container's end, riding out a restart of the Docker daemon: when the
   * daemon goes away (a broken wait, or an inspect that finds no daemon after the
   * wait), it waits up to `daemonWaitMs` for the daemon to answer again, then looks
   * at the container. Still running (live-restore): reattach and wait again. Ended:
   * its exit status, with a reason that says the daemon restarted unless it exited 0.
   * Gone, or no daemon in time: a failure that says so. Never waits forever.
   */
  private async waitForEnd(container: Docker.Container, attached: Attached, onOutput: OutputListener, stopRequested: () => boolean): Promise<RunExit> {
    let restarted = false;
    this.watchDaemon();
    for (;;) {
      let status: number | null = null;
      const epoch = this.epoch;
      try {
        // A wait cut off by a stopping daemon can hang without an error (live-restore):
        // the daemon's event stream breaking ends it instead.
        status = ((await this.unlessDaemonGoes(container.wait(), epoch)) as { StatusCode: number }).StatusCode;
        // Give the attach stream a moment to deliver the last bytes.
        await Promise.race([attached.ended, new Promise((r) => setTimeout(r, 2000))]);
        const info = await container.inspect();
        const exit = { exitCode: info.State?.ExitCode ?? status, oomKilled: Boolean(info.State?.OOMKilled) };
        // Killed by a signal nobody here sent: a daemon shutting down kills its containers
        // and still answers for a moment. If it is gone shortly after, say so.
        const killed = exit.exitCode === 137 || exit.exitCode === 143;
        if (!killed || exit.oomKilled || stopRequested() || !(await this.goingAway(epoch))) return restarted ? afterRestart(exit) : exit;
      } catch (err) {
        if (!isDaemonGone(err)) {
          // The wait answered but the container is no longer there to inspect: its status stands.
          if (status !== null) return restarted ? afterRestart({ exitCode: status, oomKilled: false }) : { exitCode: status, oomKilled: false };
          return { exitCode: null, oomKilled: false, error: `the container failed: ${(err as Error).message}` };
        }
      }
      // The daemon went away mid-task (a daemon shutdown also ends the wait, with the
      // exit status of its own kill, and the inspect after it then finds no daemon).
      restarted = true;
      if (!(await this.daemonBack())) {
        return { exitCode: null, oomKilled: false, error: `the Docker daemon stopped answering while the task ran and was not back within ${Math.round(this.daemonWaitMs / 1000)} s` };
      }
      const info = await container.inspect().catch(() => null);
      if (!info) return { exitCode: null, oomKilled: false, error: 'the Docker daemon restarted while the task ran, and the task\'s container was gone' };
      if (!info.State.Running) return afterRestart({ exitCode: info.State.ExitCode, oomKilled: Boolean(info.State.OOMKilled) });
      // It survived (live-restore): follow its output again and keep waiting.
      const stream = (await container.attach({ stream: true, stdout: true, stderr: true }).catch(() => null)) as NodeJS.ReadWriteStream | null;
      if (stream) {
        // The old stream may still be open if only the event stream broke: one reader at a time.
        (attached.stream as NodeJS.ReadWriteStream & { destroy?: () => void }).destroy?.();
        Object.assign(attached, follow(container, stream, onOutput));
      }
    }
  }

  private get daemonWaitMs(): number {
    return this.opts.daemonWaitMs ?? 120_000;
  }

  /**
   * Whether the daemon went away around now: its event stream broke since `epoch`, or
   * it stops answering within a moment. (A restart can be over before anyone pings.)
   */
  private async goingAway(epoch: number): Promise<boolean> {
    for (let i = 0; i < 15; i++) {
      if (this.epoch !== epoch) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.epoch !== epoch || !(await this.docker.ping().then(() => true, () => false));
  }

  /** Runs `p`, but rejects (as a daemon-gone error) if the epoch moves past `epoch` first. */
  private async unlessDaemonGoes<T>(p: Promise<T>, epoch: number): Promise<T> {
    let fail!: () => void;
    const moved = new Promise<never>((_, reject) => {
      fail = () => reject(Object.assign(new Error('the Docker daemon connection closed'), { code: 'ECONNRESET' }));
    });
    if (this.epoch !== epoch) fail();
    else this.epochWaiters.add(fail);
    try {
      return await Promise.race([p, moved]);
    } finally {
      this.epochWaiters.delete(fail);
    }
  }

  /**
   * Follows the daemon's event stream for as long as this runtime lives; each time it
   * breaks (the daemon stopped or restarted) the epoch moves on. The socket is unref'd
   * so it never keeps the process alive.
   */
  private watchDaemon(): void {
    if (this.watchingDaemon) return;
    this.watchingDaemon = true;
    void (async () => {
      for (;;) {
        try {
          const events = (await this.docker.getEvents({ filters: { type: ['daemon'] } })) as NodeJS.ReadableStream & { socket?: { unref?: () => void } };
          events.socket?.unref?.();
          events.resume();
          await new Promise<void>((resolve) => {
            events.once('end', resolve);
            events.once('close', resolve);
            events.once('error', () => resolve());
          });
        } catch {
          // The daemon does not answer: count it as gone, try again shortly.
        }
        this.epoch++;
        for (const wake of this.epochWaiters) wake();
        this.epochWaiters.clear();
        await new Promise((r) => setTimeout(r, 500).unref());
      }
    })();
  }

  /** Pings the daemon until it answers or `daemonWaitMs` passes. */
  private async daemonBack(): Promise<boolean> {
    const deadline = Date.now() + this.daemonWaitMs;
    while (Date.now() < deadline) {
      if (await this.docker.ping().then(() => true, () => false)) return true;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return false;
  }

  /** Attaches to a container's output (starting it if asked), and waits for its end. */
  private async watch(container: Docker.Container, memoryBytes: number, onOutput: OutputListener, startIt: boolean, startedAt: number): Promise<RunningTaskHandle> {
    const stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadWriteStream;
    const attached = follow(container, stream, onOutput);
    if (startIt) await container.start();

    let stopRequested = false;
    const done = this.waitForEnd(container, attached, onOutput, () => stopRequested);

    let prev: { cpu: number; at: number } | null = null;
    return {
      done,
      startedAt,
      stop: async (graceSec: number) => {
        stopRequested = true;
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
