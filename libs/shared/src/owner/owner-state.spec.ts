import { tasksCpuPercent } from './owner-state';

describe('tasksCpuPercent', () => {
  const entry = (cpuPercent: number, usageAt: number) => JSON.stringify({ executorId: 'e', startedAt: 0, cpuPercent, memoryPercent: 0, memoryBytes: 0, usageAt });

  it('sums the tasks\' per-core percentages over the machine\'s cores, skipping stale and broken entries', () => {
    const now = 100_000;
    expect(tasksCpuPercent({ a: entry(100, now), b: entry(60, now - 1000), old: entry(200, now - 60_000), bad: '{' }, 4, now)).toBe(40);
    expect(tasksCpuPercent({ a: entry(400, now) }, 2, now)).toBe(100);
    expect(tasksCpuPercent({}, 2, now)).toBe(0);
  });
});
