import { ContainerLimits } from '@hivemind/shared/queue/queues';

export type RunPhase = 'install' | 'task';

export interface RunSpec {
  taskId: string;
  /** Host path of the task's workspace (the unpacked task root). */
  workspace: string;
  /** Command relative to the workspace as working directory. */
  command: string[];
  env: Record<string, string>;
  limits: ContainerLimits;
  /** What kind of entry point runs: picks the default image (Docker). */
  entryKind?: 'shell' | 'python';
  /** The image to run in (Docker; the task's hivemind.json chose it); absent: the default by entryKind. */
  image?: string;
  /**
   * `install`: a step of the requirements.txt install (Docker: the Python image, as its
   * own container). Default `task`.
   */
  phase?: RunPhase;
  /**
   * Whether this run may use the network: only the install step's download, and only
   * to reach the package index (Docker: INSTALL_NETWORK). Default false.
   */
  network?: boolean;
  /** UUIDs of the GPUs the task gets (Docker DeviceRequests); none by default. */
  gpus?: string[];
  /** Largest file the run may write, in bytes (RLIMIT_FSIZE); none when absent. */
  maxFileBytes?: number;
}

export interface RunExit {
  exitCode: number | null;
  oomKilled: boolean;
  /** Set when the runtime itself failed (e.g. the container could not start). */
  error?: string;
}

export interface Usage {
  /** Percent of one core, as `docker stats` shows it. */
  cpuPercent: number;
  memoryBytes: number;
  /** Percent of the task's memory limit. */
  memoryPercent: number;
}

export interface RunningTaskHandle {
  readonly done: Promise<RunExit>;
  /** When the task's process started (ms since epoch); for an adopted task, before this executor. */
  readonly startedAt: number;
  /** SIGTERM, then SIGKILL after graceSec. Resolves when the signal was delivered. */
  stop(graceSec: number): Promise<void>;
  usage(): Promise<Usage | null>;
}

export type OutputListener = (chunk: Buffer) => void;

/** A run this worker instance started, as the runtime lists it (for garbage collection). */
export interface ManagedRun {
  /** The runtime's own id of the run (a container id). */
  id: string;
  /** The task it belongs to, when its label says. */
  taskId: string | null;
  phase: RunPhase;
  running: boolean;
}

/**
 * Runs one task in isolation. Adapters: Docker (the default) and a plain process.
 * Everything the executor does to a task's container goes through here: nothing
 * outside `runtime/docker*` talks to the Docker Engine.
 */
export interface TaskRuntime {
  readonly name: 'docker' | 'process';
  /** Whether tasks can be given GPUs (Docker DeviceRequests). */
  readonly supportsGpu: boolean;
  /** Whether a running task can be frozen and thawed (owner-first pausing). */
  readonly supportsPause: boolean;
  /** Who must own the workspace's files for the task to use them (null: leave them as they are). */
  workspaceOwner(): { uid: number; gid: number } | null;
  /** Where the workspace appears to the task. */
  workspacePath(hostWorkspace: string): string;
  start(spec: RunSpec, onOutput: OutputListener): Promise<RunningTaskHandle>;
  /**
   * Takes over a task an earlier executor started and lost (it crashed): reattaches to
   * it if it still runs, or reports how it ended. Null when there is nothing to adopt.
   */
  adopt(taskId: string, memoryBytes: number, onOutput: OutputListener): Promise<RunningTaskHandle | null>;
  /**
   * Removes what is left of a finished task (its container). Called only once its
   * result is queued: until then a crashed executor's successor can adopt it.
   */
  remove(taskId: string, phase?: RunPhase): Promise<void>;
  /** Freezes (true) or thaws (false) a running task. Resolves to whether it is now in that state. */
  setPaused(taskId: string, paused: boolean): Promise<boolean>;
  /** Whether the task's run is frozen now (e.g. left paused by an executor that crashed). */
  isPaused(taskId: string): Promise<boolean>;
  /** Runs of this worker instance that still exist (running or ended, not yet removed). */
  listManaged(): Promise<ManagedRun[]>;
  /** Removes one run listed by listManaged, by its id. */
  removeManaged(id: string): Promise<void>;
  /** Deletes those of `imageIds` that no container uses and no tag names. Returns the ids removed. */
  removeUnusedImages(imageIds: string[]): Promise<string[]>;
}
