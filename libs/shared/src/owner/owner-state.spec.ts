import { tasksCpuPercent } from './owner-state';

describe('tasksCpuPercent', () => {
  const entry = (cpuPercent: number, usageAt: number) => ({ executorId: 'e', startedAt: 0, cpuPercent, memoryPercent: 0, memoryBytes: 0, usageAt });

  it("sums the tasks' per-core percentages over the machine's cores, skipping stale and non-finite samples", () => {
    const now = 100_000;
    expect(tasksCpuPercent([entry(100, now), entry(60, now - 1000), entry(200, now - 60_000), entry(NaN, now)], 4, now)).toBe(40);
    expect(tasksCpuPercent([entry(400, now)], 2, now)).toBe(100);
    expect(tasksCpuPercent([], 2, now)).toBe(0);
  });
});
