import { execFile } from 'node:child_process';

/** One NVIDIA GPU of the machine, as nvidia-smi reports it. */
export interface GpuDevice {
  index: number;
  uuid: string;
  name: string;
  memoryMb: number;
}

/** GPU score of one device, the unit tasks ask a share of (as CPU_SCORE is 100 per core). */
export const GPU_SCORE_PER_DEVICE = 100;

/** Parses `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(out: string): GpuDevice[] {
  const devices: GpuDevice[] = [];
  for (const line of out.split('\n')) {
    const parts = line.split(',').map((p) => p.trim());
    if (parts.length < 4 || !/^\d+$/.test(parts[0]) || !parts[1]) continue;
    devices.push({ index: Number(parts[0]), uuid: parts[1], name: parts[2], memoryMb: Number(parts[3]) || 0 });
  }
  return devices;
}

/**
 * Finds the machine's NVIDIA GPUs by running nvidia-smi in a child process that is
 * killed after `timeoutMs`, so a hung driver cannot hang the worker. No nvidia-smi, an
 * error or a timeout mean no GPU; `problem` says which.
 */
export function detectGpus(timeoutMs: number, binary = 'nvidia-smi'): Promise<{ devices: GpuDevice[]; problem: string | null }> {
  return new Promise((resolve) => {
    execFile(
      binary,
      ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits'],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 },
      (err, stdout) => {
        if (err) {
          const e = err as NodeJS.ErrnoException & { killed?: boolean };
          const problem = e.code === 'ENOENT' ? `${binary} not found` : e.killed ? `${binary} did not answer in ${timeoutMs} ms` : `${binary} failed: ${e.message.split('\n')[0]}`;
          resolve({ devices: [], problem });
          return;
        }
        resolve({ devices: parseNvidiaSmi(stdout), problem: null });
      },
    );
  });
}

/** What the node registers for its GPUs: a score per device, and the largest device's memory (a task gets one device). */
export function gpuCapacity(devices: GpuDevice[]): { gpuScore: number; gpuMemoryGb: number; gpuName: string } {
  if (!devices.length) return { gpuScore: 0, gpuMemoryGb: 0, gpuName: '' };
  return {
    gpuScore: devices.length * GPU_SCORE_PER_DEVICE,
    gpuMemoryGb: Math.floor(Math.max(...devices.map((d) => d.memoryMb)) / 1024),
    gpuName: devices[0].name,
  };
}

export interface GpuAsk {
  gpuScore: number;
  gpuMemoryGb: number;
}

/** Whether a task needs a GPU at all. */
export const wantsGpu = (ask: GpuAsk) => ask.gpuScore > 0 || ask.gpuMemoryGb > 0;

/**
 * Picks the devices for a task. Without sharing, a task gets devices no other running
 * task holds: as many as its score asks (one per GPU_SCORE_PER_DEVICE, at least one),
 * each with the memory it asks. With sharing, it gets the least-used devices that have
 * the memory. `holders` maps a device uuid to the tasks holding it now.
 * Returns the chosen uuids, or why none can be given.
 */
export function chooseGpus(devices: GpuDevice[], holders: Map<string, string[]>, ask: GpuAsk, sharing: boolean): { uuids: string[] } | { error: string } {
  if (!wantsGpu(ask)) return { uuids: [] };
  if (!devices.length) return { error: 'the task asks for a GPU; this node has none' };
  const count = Math.max(1, Math.ceil(ask.gpuScore / GPU_SCORE_PER_DEVICE - 1e-9));
  const big = devices.filter((d) => d.memoryMb >= ask.gpuMemoryGb * 1024);
  if (big.length < count) {
    return { error: `the task asks for ${count} GPU(s) with ${ask.gpuMemoryGb} GB each; this node has ${big.length} such device(s)` };
  }
  const load = (d: GpuDevice) => holders.get(d.uuid)?.length ?? 0;
  const candidates = (sharing ? big : big.filter((d) => load(d) === 0)).sort((a, b) => load(a) - load(b) || a.index - b.index);
  if (candidates.length < count) {
    return { error: `no free GPU: ${big.length - candidates.length} of ${big.length} suitable device(s) are held by other tasks (GPU_SHARING is off)` };
  }
  return { uuids: candidates.slice(0, count).map((d) => d.uuid) };
}
