import { describeCpt, estimateCpt, usageMultiplier } from './cpt-estimate';

const run = (durationSeconds: number, avgCpuPercent: number, avgMemoryPercent: number, avgGpuPercent = 0) =>
  estimateCpt({ durationSeconds, avgCpuPercent, avgMemoryPercent, avgGpuPercent });

describe('the CPT estimate', () => {
  it.each([
    [100, 1.5],
    [80.01, 1.5],
    [80, 1.2],
    [50.01, 1.2],
    [50, 1.0],
    [20.01, 1.0],
    [20, 0.8],
    [0, 0.8],
  ])('usage %d %% gives multiplier %d (thresholds are exclusive)', (usage, mult) => {
    expect(usageMultiplier(usage)).toBe(mult);
  });

  it('averages CPU and memory to pick the multiplier', () => {
    expect(run(3600, 100, 61).usageMultiplier).toBe(1.5); // 80.5
    expect(run(3600, 100, 60).usageMultiplier).toBe(1.2); // 80 is not above 80
  });

  it('pays base × multiplier for an hour, and caps the time bonus at two hours', () => {
    expect(run(3600, 90, 90).total).toBe(15);
    expect(run(7200, 90, 90).total).toBe(30);
    expect(run(100_000, 90, 90).total).toBe(30);
    expect(run(100_000, 90, 90).timeBonus).toBe(2);
  });

  it('truncates, never rounds up', () => {
    // 10 × 1.0 × 0.5999... = 5.999 -> 5
    expect(run(2159.9, 30, 30).total).toBe(5);
    expect(run(1800, 30, 30).total).toBe(5);
  });

  it('adds the GPU bonus before truncating', () => {
    // 10 × 0.8 × 0.5 + 90 × 0.01 = 4.9 -> 4 ; with 100 %: 5.0 -> 5
    expect(run(1800, 0, 0, 90).total).toBe(4);
    expect(run(1800, 0, 0, 100).total).toBe(5);
  });

  it('never pays less than 1, even for an instant task or nonsense inputs', () => {
    expect(run(0.2, 0, 0).total).toBe(1);
    expect(run(Number.NaN, -5, Number.POSITIVE_INFINITY).total).toBe(1);
    expect(run(-10, 0, 0).inputs.durationSeconds).toBe(0);
  });

  it('describes every factor', () => {
    const text = describeCpt(run(3600, 90, 90, 50));
    expect(text).toContain('estimated CPT: 15');
    expect(text).toContain('multiplier 1.5');
    expect(text).toContain('time bonus min(duration/3600, 2) = 1');
    expect(text).toContain('gpu bonus gpu% x 0.01 = 0.5');
  });
});
