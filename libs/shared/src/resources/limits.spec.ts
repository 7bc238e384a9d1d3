import { checkRequest, containerLimits, reservationFor } from './limits';

const node = { cpuCores: 4, cpuScore: 400, memoryGb: 8, gpuScore: 0, gpuMemoryGb: 0, maxTasks: 2 };
const defaults = { defaultCpus: 1, minCpus: 0.25, defaultMemoryMb: 1024, minMemoryMb: 128 };
const req = (p: Partial<{ cpuScore: number; gpuScore: number; memoryGb: number; gpuMemoryGb: number }>) => ({
  cpuScore: 0,
  gpuScore: 0,
  memoryGb: 0,
  gpuMemoryGb: 0,
  ...p,
});

describe('resource requests', () => {
  it('turns a share of the registered score into cores, with a floor', () => {
    expect(containerLimits(req({ cpuScore: 200 }), node, defaults).nanoCpus).toBe(2e9);
    expect(containerLimits(req({ cpuScore: 1 }), node, defaults).nanoCpus).toBe(0.25e9);
    expect(containerLimits(req({ cpuScore: 400 }), node, defaults).nanoCpus).toBe(4e9);
  });

  it('gives defaults to a task that asks 0', () => {
    const l = containerLimits(req({}), node, defaults);
    expect(l).toEqual({ nanoCpus: 1e9, memoryBytes: 1024 * 1024 * 1024 });
    expect(reservationFor(req({}), l, node)).toEqual({ cpuScore: 100, memoryMb: 1024, gpuScore: 0, gpuMemoryGb: 0 });
  });

  it('maps memory_gb to bytes, capped at the node', () => {
    expect(containerLimits(req({ memoryGb: 2 }), node, defaults).memoryBytes).toBe(2 * 1024 ** 3);
  });

  it('refuses what can never fit, saying what and how much', () => {
    expect(checkRequest(req({ cpuScore: 500 }), node)).toBe('the task asks a cpu score of 500; this node registered 400');
    expect(checkRequest(req({ memoryGb: 9 }), node)).toBe('the task asks 9 GB of memory; this node registered 8 GB');
    expect(checkRequest(req({ gpuScore: 1 }), node)).toBe('the task asks for a GPU; this node has none');
    expect(checkRequest(req({ cpuScore: NaN }), node)).toMatch(/cpu_usage must be a finite number/);
    expect(checkRequest(req({ memoryGb: -1 }), node)).toMatch(/memory_gb must be a finite number of at least 0, got -1/);
    expect(checkRequest(req({ cpuScore: 400, memoryGb: 8 }), node)).toBeNull();
  });

  it('refuses a GPU task on a node without GPUs or in CPU-only mode, and reserves whole devices unless sharing', () => {
    expect(checkRequest(req({ gpuScore: 10 }), node)).toBe('the task asks for a GPU; this node has none');
    expect(checkRequest(req({ gpuMemoryGb: 1 }), { ...node, cpuOnly: true })).toBe('the task asks for a GPU; this node runs CPU-only (GPU_MODE=off)');
    const gpuNode = { ...node, gpuScore: 200, gpuMemoryGb: 16 };
    const l = containerLimits(req({ gpuScore: 10 }), gpuNode, defaults);
    expect(reservationFor(req({ gpuScore: 10 }), l, gpuNode).gpuScore).toBe(100);
    expect(reservationFor(req({ gpuScore: 150 }), l, gpuNode).gpuScore).toBe(200);
    expect(reservationFor(req({ gpuScore: 10 }), l, { ...gpuNode, gpuSharing: true }).gpuScore).toBe(10);
    expect(reservationFor(req({}), l, gpuNode).gpuScore).toBe(0);
  });
});
