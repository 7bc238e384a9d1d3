import { OwnerBusyDetector } from './owner-busy';

/** Feeds samples every 5 s of a fake clock; returns the states. */
function drive(d: OwnerBusyDetector, start: number, loads: [host: number, tasks: number][], stepMs = 5000) {
  return loads.map(([host, tasks], i) => d.feed({ at: start + i * stepMs, hostCpuPercent: host, tasksCpuPercent: tasks }));
}

describe('OwnerBusyDetector', () => {
  const opts = { thresholdPercent: 50, busyAfterMs: 10_000, idleAfterMs: 15_000 };
  const T0 = 1_000_000;

  it('turns busy only once the owner load stayed above the threshold for busyAfter', () => {
    const d = new OwnerBusyDetector(opts);
    const s = drive(d, T0, [[60, 0], [70, 0], [80, 0]]);
    expect(s.map((x) => x.busy)).toEqual([false, false, true]);
    expect(s[1].reason).toBe("the owner's own CPU use (70 %) is above 50 % for 5 s; busy after 10 s");
    expect(s[2]).toEqual({ busy: true, ownerCpuPercent: 80, since: T0 + 10_000, reason: "the owner's own CPU use (80 %) stayed above 50 % for 10 s" });
  });

  it('does not count the tasks\' CPU as the owner\'s', () => {
    const d = new OwnerBusyDetector(opts);
    const s = drive(d, T0, [[95, 90], [95, 90], [95, 90], [95, 90]]);
    expect(s.every((x) => !x.busy)).toBe(true);
    expect(s[3].ownerCpuPercent).toBe(5);
  });

  it('a dip below the threshold restarts the count', () => {
    const d = new OwnerBusyDetector(opts);
    const s = drive(d, T0, [[60, 0], [70, 0], [40, 0], [60, 0], [60, 0], [60, 0]]);
    expect(s.map((x) => x.busy)).toEqual([false, false, false, false, false, true]);
    expect(s[5].since).toBe(T0 + 25_000);
  });

  it('load exactly at the threshold is not above it', () => {
    const d = new OwnerBusyDetector(opts);
    expect(drive(d, T0, [[50, 0], [50, 0], [50, 0], [50, 0]]).some((x) => x.busy)).toBe(false);
  });

  it('turns idle only after idleAfter at or below the threshold, and a spike restarts that count', () => {
    const d = new OwnerBusyDetector(opts);
    drive(d, T0, [[90, 0], [90, 0], [90, 0]]);
    expect(d.state.busy).toBe(true);
    const s = drive(d, T0 + 15_000, [[10, 0], [10, 0], [90, 0], [10, 0], [10, 0], [10, 0], [10, 0]]);
    expect(s.map((x) => x.busy)).toEqual([true, true, true, true, true, true, false]);
    expect(s[1].reason).toBe('the owner is busy; their CPU use (10 %) is at most 50 % for 5 s of the 15 s that end it');
    expect(s[2].reason).toBe('the owner is busy: their own CPU use is 90 %, above 50 %');
    expect(s[6]).toEqual({ busy: false, ownerCpuPercent: 10, since: null, reason: "the owner's own CPU use (10 %) stayed at most 50 % for 15 s" });
  });

  it('keeps `since` while busy', () => {
    const d = new OwnerBusyDetector(opts);
    const s = drive(d, T0, [[90, 0], [90, 0], [90, 0], [90, 0], [20, 0]]);
    expect(s[2].since).toBe(T0 + 10_000);
    expect(s[3].since).toBe(T0 + 10_000);
    expect(s[4].since).toBe(T0 + 10_000);
  });

  it('with zero thresholds for time, flips on the first sample', () => {
    const d = new OwnerBusyDetector({ thresholdPercent: 30, busyAfterMs: 0, idleAfterMs: 0 });
    expect(drive(d, T0, [[40, 0], [10, 0]]).map((x) => x.busy)).toEqual([true, false]);
  });

  it('is off with a threshold of 0, and clamps odd readings', () => {
    const d = new OwnerBusyDetector({ ...opts, thresholdPercent: 0 });
    expect(d.state.reason).toMatch(/off/);
    const s = drive(d, T0, [[100, 0], [100, 0], [100, 0], [100, 0]]);
    expect(s.some((x) => x.busy)).toBe(false);
    const e = new OwnerBusyDetector(opts);
    expect(e.feed({ at: T0, hostCpuPercent: NaN, tasksCpuPercent: 5 }).ownerCpuPercent).toBe(0);
    expect(e.feed({ at: T0, hostCpuPercent: 20, tasksCpuPercent: 150 }).ownerCpuPercent).toBe(0);
  });
});
