import { TaskUsageAverage } from './task-usage';

describe('TaskUsageAverage', () => {
  it('averages CPU as a share of the CPUs the task was given, and memory of its limit', () => {
    const u = new TaskUsageAverage(2);
    u.add(200, 10); // both CPUs busy
    u.add(100, 30); // one of two
    expect(u.samples).toBe(2);
    expect(u.avgCpuPercent).toBe(75);
    expect(u.avgMemoryPercent).toBe(20);
    expect(u.inputs(90)).toEqual({ durationSeconds: 90, avgCpuPercent: 75, avgMemoryPercent: 20, avgGpuPercent: 0 });
  });

  it('clamps readings outside 0..100 and skips non-numbers', () => {
    const u = new TaskUsageAverage(0.5);
    u.add(80, 150); // 160 % of half a core: capped at 100
    u.add(-5, -1);
    u.add(NaN, 10);
    expect(u.samples).toBe(2);
    expect(u.avgCpuPercent).toBe(50);
    expect(u.avgMemoryPercent).toBe(50);
  });

  it('is 0 with no sample', () => {
    const u = new TaskUsageAverage(1);
    expect(u.avgCpuPercent).toBe(0);
    expect(u.inputs(0).avgMemoryPercent).toBe(0);
  });
});
