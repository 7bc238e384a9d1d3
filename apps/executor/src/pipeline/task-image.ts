import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { TaskJob } from '@hivemind/shared/queue/queues';
import { imageForName, MANIFEST_FILE } from '@hivemind/shared/task-format/task-manifest';
import { TaskRuntime } from '../runtime/task-runtime.port';

/**
 * The image the task asked for in its hivemind.json, as this executor's TASK_IMAGES
 * names it: `undefined` when it asked for none (the runtime picks the default image
 * by entry point), or why it cannot run here.
 */
export function taskImage(job: TaskJob, config: WorkerConfig, runtime: Pick<TaskRuntime, 'name'>): { image?: string } | { error: string } {
  if (!job.image) return {};
  const found = imageForName(job.image, config.namedImages);
  if ('error' in found) return found;
  if (runtime.name !== 'docker') {
    return { error: `${MANIFEST_FILE} asks for the image "${job.image}"; the ${runtime.name} runtime runs tasks on this machine's own Python, in no image` };
  }
  return found;
}
