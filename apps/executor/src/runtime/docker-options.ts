import type Docker from 'dockerode';
import { RunPhase, RunSpec } from './task-runtime.port';

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
  /** Docker network of a run that may use the network (RunSpec.network; default `bridge`). */
  installNetwork?: string;
  /** NODE_ID, written on every container (LABEL_NODE). */
  nodeId: string;
  /** REDIS_PREFIX of this worker instance (LABEL_INSTANCE): what listManaged lists. */
  instance: string;
}

/** Labels every container of ours carries. */
export const LABEL_MANAGED = 'io.hivemind.managed';
export const LABEL_TASK = 'io.hivemind.task-id';
export const LABEL_NODE = 'io.hivemind.node-id';
/** The Redis prefix of the worker instance that owns the container (several can share a daemon). */
export const LABEL_INSTANCE = 'io.hivemind.instance';
/** `install` or `task` (RunPhase). */
export const LABEL_PHASE = 'io.hivemind.phase';

export const WORKSPACE = '/workspace';

export function containerName(taskId: string, phase: RunPhase = 'task'): string {
  return phase === 'install' ? `hivemind-install-${taskId}` : `hivemind-task-${taskId}`;
}

/** The labels of one run: ours, this instance's, the task's and the phase. */
export function runLabels(opts: DockerRuntimeOptions, taskId: string, phase: RunPhase = 'task'): Record<string, string> {
  return {
    [LABEL_MANAGED]: 'true',
    [LABEL_TASK]: taskId,
    [LABEL_NODE]: opts.nodeId || 'unknown',
    [LABEL_INSTANCE]: opts.instance,
    [LABEL_PHASE]: phase,
  };
}

/** The image a task runs in: the one it asked for, else by its entry point; and only if the allowlist has it. */
export function imageFor(opts: DockerRuntimeOptions, spec: RunSpec): string {
  const image = spec.image ?? (spec.entryKind === 'shell' && spec.phase !== 'install' ? (opts.shellImage ?? opts.image) : opts.image);
  const allowed = opts.allowedImages ?? [opts.image, opts.shellImage ?? opts.image];
  if (!allowed.includes(image)) throw new Error(`the image ${image} is not on this node's allowlist (TASK_IMAGE_ALLOWLIST)`);
  return image;
}

/**
 * The hardened container of one run: no network unless the spec asks for it (then only
 * INSTALL_NETWORK), no capabilities, no new privileges, read-only root with a small
 * tmpfs /tmp, pids, memory (no swap), CPU and file-size limits, a non-root user, and
 * only the workspace mounted.
 */
export function createOptions(opts: DockerRuntimeOptions, spec: RunSpec): Docker.ContainerCreateOptions {
  const network = spec.network === true;
  const fsize = spec.maxFileBytes !== undefined ? Math.max(0, Math.floor(spec.maxFileBytes)) : undefined;
  return {
    name: containerName(spec.taskId, spec.phase),
    Image: imageFor(opts, spec),
    Cmd: spec.command,
    WorkingDir: WORKSPACE,
    User: opts.user,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    Labels: runLabels(opts, spec.taskId, spec.phase),
    NetworkDisabled: !network,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      NetworkMode: network ? (opts.installNetwork ?? 'bridge') : 'none',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${opts.tmpfsMb}m` },
      PidsLimit: opts.pidsLimit,
      Memory: spec.limits.memoryBytes,
      MemorySwap: spec.limits.memoryBytes,
      NanoCpus: spec.limits.nanoCpus,
      // RLIMIT_FSIZE: a write or fallocate past it fails with EFBIG (sparse files included).
      ...(fsize !== undefined ? { Ulimits: [{ Name: 'fsize', Soft: fsize, Hard: fsize }] } : {}),
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
