import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { Outcome, outcomes } from '@hivemind/shared/task-format/outcome';
import { extractZip } from '@hivemind/shared/task-format/zip-extract';
import { TASK_STORE, TaskStore } from '@hivemind/shared/state/task-store';
import { GpuAllocatorService } from '../gpu-allocator.service';
import { RuntimeService } from '../runtime/runtime.service';
import { removeTree } from '../workspace/remove-tree';
import { withBudget } from './cancellation';
import { taskImage } from './task-image';
import { quotaOf, TaskContext } from './task-context';

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await fs.lchown(dir, uid, gid);
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await fs.lchown(p, uid, gid);
  }
}

/**
 * The first step: a fresh workspace bounded by its quota, the task's zip unpacked
 * into it (checked again entry by entry, bounded by ZIP_MAX_ENTRIES and
 * ZIP_MAX_UNCOMPRESSED_MB), owned by the task's user, and its GPUs allocated.
 * Budget: PREPARE_TIMEOUT seconds and the task's cancellation.
 */
@Injectable()
export class PrepareWorkspaceStep {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(TASK_STORE) private readonly store: TaskStore,
    private readonly runtimes: RuntimeService,
    private readonly gpus: GpuAllocatorService,
  ) {}

  /** Null when the workspace is ready; else the outcome that ends the task. */
  async run(ctx: TaskContext): Promise<Outcome | null> {
    const c = this.config;
    const { workspace } = ctx.paths;
    const image = taskImage(ctx.job, c, ctx.runtime);
    if ('error' in image) return outcomes.invalidTask(image.error);
    if (image.image) ctx.sink.note(`image: ${ctx.job.image} (${image.image}), as hivemind.json asks`);
    const budget = withBudget(ctx.live.signal, c.PREPARE_TIMEOUT * 1000, () =>
      outcomes.stepOverBudget('prepare', `unpacking the task took longer than ${c.PREPARE_TIMEOUT} s (PREPARE_TIMEOUT)`),
    );
    try {
      const quota = quotaOf(this.runtimes, this.config);
      await quota.release(ctx.job.taskId, workspace);
      await removeTree(workspace);
      const zip = await this.store.taskZipHere(ctx.job.taskId, ctx.paths.taskZip);
      if (zip.fetched) ctx.log.debug({ file: zip.file }, 'task zip fetched from the task store');
      budget.signal.throwIfAborted();
      await quota.create(ctx.job.taskId, workspace, c.workspaceQuotaBytes);
      await extractZip(zip.file, ctx.job.root, workspace, {
        maxEntries: c.ZIP_MAX_ENTRIES,
        maxUncompressedBytes: c.ZIP_MAX_UNCOMPRESSED_MB * 1024 * 1024,
        signal: budget.signal,
      });
      await fs.mkdir(path.join(workspace, 'result'), { recursive: true });
      const owner = ctx.runtime.workspaceOwner();
      // The folder itself, not a link to it (loop quota: a slot volume's folder).
      if (owner) await chownTree(await fs.realpath(workspace), owner.uid, owner.gid);
      budget.signal.throwIfAborted();
    } finally {
      budget.done();
    }
    const gpus = await this.gpus.allocate(ctx.job.taskId, ctx.job.request);
    if ('error' in gpus) return outcomes.gpuUnavailable(gpus.error);
    if (gpus.uuids.length && !ctx.runtime.supportsGpu) return outcomes.gpuUnavailable(`the task asks for a GPU; the ${ctx.runtime.name} runtime cannot give one`);
    if (gpus.uuids.length) {
      ctx.live.gpus = gpus.uuids;
      ctx.sink.note(`GPUs: ${gpus.uuids.join(', ')}`);
    }
    return null;
  }
}
