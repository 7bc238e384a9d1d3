import { ContainerLimits } from '@hivemind/shared/queue/queues';

export interface RunSpec {
  taskId: string;
  /** Host path of the task's workspace (the unpacked task root). */
  workspace: string;
  /** Command relative to the workspace as working directory. */
  command: string[];
  env: Record<string, string>;
  limits: ContainerLimits;
  labels: Record<string, string>;
  /** What kind of entry point runs: picks the default image (Docker). */
  entryKind?: 'shell' | 'python';
  /**
   * `install`: the requirements.txt step, the one run that may use the network
   * (Docker: INSTALL_NETWORK, in the Python image, as its own container). Default `task`.
   */
  phase?: 'install' | 'task';
  /** UUIDs of the GPUs the task gets (Docker DeviceRequests); none by default. */
  gpus?: string[];
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

/** Runs one task in isolation. Adapters: Docker (the default) and a plain process. */
export interface TaskRuntime {
  readonly name: 'docker' | 'process';
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
  remove(taskId: string, phase?: RunSpec['phase']): Promise<void>;
}

export const TASK_RUNTIME = Symbol('TASK_RUNTIME');
