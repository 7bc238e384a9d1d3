import { Inject, Injectable } from '@nestjs/common';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { NODE_CAPACITY } from '@hivemind/shared/nest/worker-core.module';
import { chooseGpus, GpuAsk, wantsGpu } from '@hivemind/shared/resources/gpu';
import { NodeCapacity } from '@hivemind/shared/resources/limits';
import { GpuAllocations } from '@hivemind/shared/state/gpu-allocations';

/**
 * Hands GPUs to tasks. Who holds which device is shared by every executor of the node
 * (GpuAllocations) and changes only under its short lock, so no two running tasks get
 * one device unless GPU_SHARING allows it.
 */
@Injectable()
export class GpuAllocatorService {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(NODE_CAPACITY) private readonly node: NodeCapacity,
    private readonly allocations: GpuAllocations,
  ) {}

  /** The devices a task gets (empty when it asks none), or why it cannot have any. */
  async allocate(taskId: string, ask: GpuAsk): Promise<{ uuids: string[] } | { error: string }> {
    if (!wantsGpu(ask)) return { uuids: [] };
    if (this.node.cpuOnly) return { error: 'the task asks for a GPU; this node runs CPU-only (GPU_MODE=off)' };
    return this.allocations.change(async ({ holders, set }) => {
      const already = [...holders].filter(([, tasks]) => tasks.includes(taskId)).map(([uuid]) => uuid);
      if (already.length) return { uuids: already };
      const choice = chooseGpus(this.node.gpuDevices ?? [], holders, ask, this.config.GPU_SHARING);
      if ('error' in choice) return choice;
      for (const uuid of choice.uuids) await set(uuid, [...(holders.get(uuid) ?? []), taskId]);
      return choice;
    });
  }

  /** Frees what `keep` says is no longer held: one task's devices, or those of tasks gone. */
  async release(keep: (taskId: string) => boolean): Promise<void> {
    if (!(await this.allocations.any())) return;
    await this.allocations.change(async ({ holders, set }) => {
      for (const [uuid, tasks] of holders) {
        const left = tasks.filter(keep);
        if (left.length !== tasks.length) await set(uuid, left);
      }
    });
  }
}
