import { ContainerLimits } from '../queue/queues';
import { GPU_SCORE_PER_DEVICE, GpuDevice, wantsGpu } from './gpu';

export interface NodeCapacity {
  cpuCores: number;
  cpuScore: number;
  memoryGb: number;
  gpuScore: number;
  gpuMemoryGb: number;
  maxTasks: number;
  /** Name of the first GPU, registered as gpu_name. */
  gpuName?: string;
  /** GPU_MODE=off: the node runs CPU-only, whatever GPUs it has. */
  cpuOnly?: boolean;
  /** GPU_SHARING: running tasks may share a device. */
  gpuSharing?: boolean;
  /** The GPUs found at start (GPU_MODE=auto). */
  gpuDevices?: GpuDevice[];
}

export interface LimitDefaults {
  defaultCpus: number;
  minCpus: number;
  defaultMemoryMb: number;
  minMemoryMb: number;
}

export interface ResourceRequest {
  cpuScore: number;
  gpuScore: number;
  memoryGb: number;
  gpuMemoryGb: number;
}

/** What one task holds in the ledger, in the units the node registered. */
export interface Reservation {
  cpuScore: number;
  memoryMb: number;
  gpuScore: number;
  gpuMemoryGb: number;
  /** When it was taken (ms since epoch). */
  at?: number;
}

/** Returns why a request can never fit this node (or null). Checks shape too. */
export function checkRequest(req: ResourceRequest, node: NodeCapacity): string | null {
  const fields: [keyof ResourceRequest, string][] = [
    ['cpuScore', 'cpu_usage'],
    ['gpuScore', 'gpu_usage'],
    ['memoryGb', 'memory_gb'],
    ['gpuMemoryGb', 'gpu_memory_gb'],
  ];
  for (const [k, wire] of fields) {
    const v = req[k];
    if (!Number.isFinite(v) || v < 0) return `${wire} must be a finite number of at least 0, got ${v}`;
  }
  if (req.cpuScore > node.cpuScore) {
    return `the task asks a cpu score of ${req.cpuScore}; this node registered ${node.cpuScore}`;
  }
  if (req.memoryGb > node.memoryGb) {
    return `the task asks ${req.memoryGb} GB of memory; this node registered ${node.memoryGb} GB`;
  }
  if ((req.gpuScore > 0 || req.gpuMemoryGb > 0) && node.gpuScore <= 0) {
    return node.cpuOnly ? 'the task asks for a GPU; this node runs CPU-only (GPU_MODE=off)' : 'the task asks for a GPU; this node has none';
  }
  if (req.gpuScore > node.gpuScore) return `the task asks a gpu score of ${req.gpuScore}; this node registered ${node.gpuScore}`;
  if (req.gpuMemoryGb > node.gpuMemoryGb) {
    return `the task asks ${req.gpuMemoryGb} GB of GPU memory; this node registered ${node.gpuMemoryGb} GB`;
  }
  return null;
}

/**
 * Turns a request (shares of the registered totals) into container limits. A task
 * asking 0 gets the defaults; every limit has a floor and never exceeds the node.
 */
export function containerLimits(req: ResourceRequest, node: NodeCapacity, d: LimitDefaults): ContainerLimits {
  let cpus = req.cpuScore > 0 ? (node.cpuCores * req.cpuScore) / node.cpuScore : d.defaultCpus;
  cpus = Math.min(Math.max(cpus, d.minCpus), node.cpuCores);
  let memMb = req.memoryGb > 0 ? req.memoryGb * 1024 : d.defaultMemoryMb;
  memMb = Math.min(Math.max(memMb, d.minMemoryMb), node.memoryGb * 1024);
  return { nanoCpus: Math.round(cpus * 1e9), memoryBytes: Math.round(memMb * 1024 * 1024) };
}

/** The ledger entry for a task: its request, or the equivalent of the defaults it will get. */
export function reservationFor(req: ResourceRequest, limits: ContainerLimits, node: NodeCapacity): Reservation {
  const cpus = limits.nanoCpus / 1e9;
  return {
    cpuScore: req.cpuScore > 0 ? req.cpuScore : Math.min(node.cpuScore, (cpus / node.cpuCores) * node.cpuScore),
    memoryMb: Math.round(limits.memoryBytes / (1024 * 1024)),
    // Without sharing a task holds whole devices, so the ledger admits no more GPU
    // tasks than there are free devices.
    gpuScore: wantsGpu(req) && !node.gpuSharing ? Math.min(node.gpuScore, Math.max(1, Math.ceil(req.gpuScore / GPU_SCORE_PER_DEVICE - 1e-9)) * GPU_SCORE_PER_DEVICE) : req.gpuScore,
    gpuMemoryGb: req.gpuMemoryGb,
  };
}
