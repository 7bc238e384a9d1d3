import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BENCHMARK_VERSION, hardwareFingerprint, resolveCpuScore, runCpuBenchmark } from './cpu-benchmark';

describe('CPU benchmark', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-bench-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('measures every thread at once and scores the machine', async () => {
    const r = await runCpuBenchmark({ threads: 2, durationMs: 40, warmupMs: 10, rounds: 2 });
    expect(r.threads).toBe(2);
    expect(r.rounds).toBe(2);
    expect(r.unitsPerSec).toHaveLength(2);
    expect(r.unitsPerSec.every((u) => u > 0)).toBe(true);
    expect(r.machineScore).toBeGreaterThanOrEqual(1);
  });

  it('fingerprints the hardware by CPU model, cores, memory and benchmark version', () => {
    const f = hardwareFingerprint();
    expect(f).toContain(`${os.cpus().length} cores`);
    expect(f).toContain(`v${BENCHMARK_VERSION}`);
    expect(hardwareFingerprint()).toBe(f);
  });

  it('runs once, then uses the cache for the same hardware; CPU_SCORE overrides; other hardware measures again', async () => {
    const cacheFile = path.join(dir, 'sub', 'cpu-benchmark.json');
    const cores = os.cpus().length;
    const first = await resolveCpuScore({ cores, cacheFile, durationMs: 30 });
    expect(first.source).toBe('benchmark');
    const cached = JSON.parse(await fs.readFile(cacheFile, 'utf8'));
    expect(cached.fingerprint).toBe(hardwareFingerprint());
    expect(first.cpuScore).toBe(cached.machineScore);

    // A planted score proves the second call reads the cache rather than measuring.
    await fs.writeFile(cacheFile, JSON.stringify({ ...cached, machineScore: 1234 }));
    expect(await resolveCpuScore({ cores, cacheFile })).toEqual({ cpuScore: 1234, source: 'cache', machineScore: 1234 });
    // Fewer cores offered than the machine has: a proportional share.
    expect((await resolveCpuScore({ cores: cores / 2, cacheFile })).cpuScore).toBe(Math.round(1234 / 2));
    expect(await resolveCpuScore({ override: 777, cores, cacheFile })).toEqual({ cpuScore: 777, source: 'CPU_SCORE' });

    await fs.writeFile(cacheFile, JSON.stringify({ ...cached, machineScore: 1234, fingerprint: 'another machine' }));
    const again = await resolveCpuScore({ cores, cacheFile, durationMs: 30 });
    expect(again.source).toBe('benchmark');
    expect(JSON.parse(await fs.readFile(cacheFile, 'utf8')).fingerprint).toBe(hardwareFingerprint());
  });
});
