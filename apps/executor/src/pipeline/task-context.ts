import pino, { type Logger } from 'pino';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { TaskJob } from '@hivemind/shared/queue/queues';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import { OutputSink } from '../output-sink';
import { RuntimeService } from '../runtime/runtime.service';
import { TaskRuntime } from '../runtime/task-runtime.port';
import { WorkspaceQuota } from '../workspace/quota';
import { LiveTask } from './live-task';

/** What every step of one task works with. */
export interface TaskContext {
  job: TaskJob;
  live: LiveTask;
  runtime: TaskRuntime;
  /** The task's output: its bounded log file and the live stream. */
  sink: OutputSink;
  log: Logger;
  /** The task's files, derived from its id. */
  paths: ReturnType<WorkDir['taskFiles']>;
  /** The executor that runs it (recorded in the running-tasks hash). */
  executorId: string;
}

const OFF = new Map<string, WorkspaceQuota>();

/** How workspaces are bounded (decided by the runtime service before the first task; `off` until then). */
export function quotaOf(runtimes: RuntimeService, config: WorkerConfig): WorkspaceQuota {
  if (runtimes.quota) return runtimes.quota;
  const volumes = new WorkDir(config.workDir).volumes();
  let off = OFF.get(volumes);
  if (!off) OFF.set(volumes, (off = new WorkspaceQuota('off', volumes, pino({ enabled: false }))));
  return off;
}
