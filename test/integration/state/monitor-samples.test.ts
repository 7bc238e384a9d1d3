import { HostSample } from '@hivemind/shared/state/monitor-samples';
import { openFixture, StateFixture } from './support';

const sample = (at: number): HostSample => ({
  at,
  cpuPercent: 12.5,
  memoryPercent: 40,
  memoryUsedBytes: 4e9,
  memoryTotalBytes: 1e10,
  diskPercent: 55,
  diskFreeBytes: 1e11,
  diskTotalBytes: 2e11,
  netRxBytesPerSec: 1000,
  netTxBytesPerSec: 2000,
  gpus: [{ name: 'GPU 0', utilizationPercent: 30, memoryUsedMb: 1024, memoryTotalMb: 8192 }],
});

describe('MonitorSamples (monitor:latest, monitor:history) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('monitor')));
  afterEach(() => f.close());

  it('publish keeps the newest `keep` samples; history is oldest first; latest is the newest', async () => {
    const { monitor } = f.state;
    expect(await monitor.history()).toEqual([]);
    expect(await monitor.latest()).toBeNull();
    for (let i = 1; i <= 5; i++) await monitor.publish(sample(1000 * i), 3);
    expect((await monitor.history()).map((s) => s.at)).toEqual([3000, 4000, 5000]);
    expect(await f.raw.llen(f.keys.monitorHistory)).toBe(3);
    expect(await monitor.latest(60_000, 5000)).toEqual(sample(5000));
  });

  it('latest respects maxAgeMs', async () => {
    await f.state.monitor.publish(sample(10_000), 10);
    expect(await f.state.monitor.latest(1000, 11_000)).toEqual(sample(10_000));
    expect(await f.state.monitor.latest(1000, 11_001)).toBeNull();
    expect((await f.state.monitor.latest(undefined, Date.now()))).toBeNull(); // 60 s default: long ago
  });

  it('refuses to publish a sample of the wrong shape', async () => {
    await expect(f.state.monitor.publish({ ...sample(1), gpus: [{ name: 'x' }] } as unknown as HostSample, 10)).rejects.toThrow();
    expect(await f.raw.exists(f.keys.monitorLatest)).toBe(0);
    expect(await f.raw.exists(f.keys.monitorHistory)).toBe(0);
  });

  it('leaves malformed and wrong-shaped samples out without throwing', async () => {
    await f.state.monitor.publish(sample(1000), 10);
    await f.raw.lpush(f.keys.monitorHistory, 'garbage', JSON.stringify({ at: 1500 }));
    await f.state.monitor.publish(sample(2000), 10);
    expect((await f.state.monitor.history()).map((s) => s.at)).toEqual([1000, 2000]);
    await f.raw.set(f.keys.monitorLatest, JSON.stringify({ at: 2000, cpuPercent: 'hot' }));
    expect(await f.state.monitor.latest(60_000, 2000)).toBeNull();
    await f.raw.set(f.keys.monitorLatest, '{');
    expect(await f.state.monitor.latest(60_000, 2000)).toBeNull();
  });
});
