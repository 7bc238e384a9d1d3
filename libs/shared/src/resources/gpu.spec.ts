import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chooseGpus, detectGpus, GpuDevice, gpuCapacity, parseNvidiaSmi } from './gpu';

const devices: GpuDevice[] = [
  { index: 0, uuid: 'GPU-a', name: 'NVIDIA H100', memoryMb: 81559 },
  { index: 1, uuid: 'GPU-b', name: 'NVIDIA H100', memoryMb: 81559 },
  { index: 2, uuid: 'GPU-c', name: 'NVIDIA T4', memoryMb: 15360 },
];

describe('GPU allocation', () => {
  it('gives nothing to a task that asks for no GPU', () => {
    expect(chooseGpus(devices, new Map(), { gpuScore: 0, gpuMemoryGb: 0 }, false)).toEqual({ uuids: [] });
  });

  it('gives a free device, never one another task holds, unless sharing is allowed', () => {
    const holders = new Map([['GPU-a', ['t1']]]);
    expect(chooseGpus(devices, holders, { gpuScore: 50, gpuMemoryGb: 0 }, false)).toEqual({ uuids: ['GPU-b'] });
    const all = new Map([['GPU-a', ['t1']], ['GPU-b', ['t2']], ['GPU-c', ['t3']]]);
    expect(chooseGpus(devices, all, { gpuScore: 50, gpuMemoryGb: 0 }, false)).toEqual({
      error: 'no free GPU: 3 of 3 suitable device(s) are held by other tasks (GPU_SHARING is off)',
    });
    // Sharing: the least-used device.
    const shared = new Map([['GPU-a', ['t1', 't4']], ['GPU-b', ['t2']], ['GPU-c', ['t3', 't5']]]);
    expect(chooseGpus(devices, shared, { gpuScore: 50, gpuMemoryGb: 0 }, true)).toEqual({ uuids: ['GPU-b'] });
  });

  it('asks as many devices as the score covers, each with the memory asked', () => {
    expect(chooseGpus(devices, new Map(), { gpuScore: 200, gpuMemoryGb: 0 }, false)).toEqual({ uuids: ['GPU-a', 'GPU-b'] });
    expect(chooseGpus(devices, new Map([['GPU-a', ['t1']]]), { gpuScore: 10, gpuMemoryGb: 40 }, false)).toEqual({ uuids: ['GPU-b'] });
    expect(chooseGpus(devices, new Map(), { gpuScore: 300, gpuMemoryGb: 40 }, false)).toEqual({
      error: 'the task asks for 3 GPU(s) with 40 GB each; this node has 2 such device(s)',
    });
    // Memory alone asks for one device.
    expect(chooseGpus(devices, new Map(), { gpuScore: 0, gpuMemoryGb: 8 }, false)).toEqual({ uuids: ['GPU-a'] });
  });

  it('refuses on a node without GPUs', () => {
    expect(chooseGpus([], new Map(), { gpuScore: 10, gpuMemoryGb: 0 }, false)).toEqual({ error: 'the task asks for a GPU; this node has none' });
  });
});

describe('GPU detection', () => {
  it('parses nvidia-smi and registers a score per device and the largest memory', () => {
    const parsed = parseNvidiaSmi('0, GPU-a, NVIDIA H100, 81559\n1, GPU-c, NVIDIA T4, 15360\n\n');
    expect(parsed).toEqual([
      { index: 0, uuid: 'GPU-a', name: 'NVIDIA H100', memoryMb: 81559 },
      { index: 1, uuid: 'GPU-c', name: 'NVIDIA T4', memoryMb: 15360 },
    ]);
    expect(gpuCapacity(parsed)).toEqual({ gpuScore: 200, gpuMemoryGb: 79, gpuName: 'NVIDIA H100' });
    expect(gpuCapacity([])).toEqual({ gpuScore: 0, gpuMemoryGb: 0, gpuName: '' });
  });

  it('treats a missing or hung nvidia-smi as no GPU, within the timeout', async () => {
    expect(await detectGpus(2000, '/nonexistent/nvidia-smi')).toEqual({ devices: [], problem: '/nonexistent/nvidia-smi not found' });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-smi-'));
    const hung = path.join(dir, 'nvidia-smi');
    writeFileSync(hung, '#!/bin/sh\nsleep 30\n');
    chmodSync(hung, 0o755);
    const t0 = Date.now();
    const r = await detectGpus(300, hung);
    expect(r.devices).toEqual([]);
    expect(r.problem).toBe(`${hung} did not answer in 300 ms`);
    expect(Date.now() - t0).toBeLessThan(5000);
    const fake = path.join(dir, 'fake-smi');
    writeFileSync(fake, '#!/bin/sh\necho "0, GPU-x, Fake GPU, 2048"\n');
    chmodSync(fake, 0o755);
    expect((await detectGpus(2000, fake)).devices).toEqual([{ index: 0, uuid: 'GPU-x', name: 'Fake GPU', memoryMb: 2048 }]);
  });
});
