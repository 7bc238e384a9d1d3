/**
 * Decides whether the machine's owner is busy, from a stream of load samples: the
 * owner's own CPU use (the host's, minus what the node's tasks use) above a threshold
 * for `busyAfterMs` makes the owner busy; below it for `idleAfterMs` makes them idle
 * again. Pure: the caller passes the samples and their times (a fake clock in tests).
 */
export interface OwnerBusyOptions {
  /** Owner CPU, in percent of the whole machine, above which the owner counts as active; 0 turns detection off. */
  thresholdPercent: number;
  busyAfterMs: number;
  idleAfterMs: number;
}

export interface OwnerLoadSample {
  /** When the sample was taken (ms since epoch). */
  at: number;
  /** The whole machine's CPU use, 0..100. */
  hostCpuPercent: number;
  /** What the node's tasks used of the whole machine, 0..100. */
  tasksCpuPercent: number;
}

export interface OwnerBusyState {
  busy: boolean;
  /** The owner's own CPU use at the last sample, in percent of the machine. */
  ownerCpuPercent: number;
  /** When the owner became busy (ms since epoch), null while idle. */
  since: number | null;
  /** Why, in words, for the dashboard and the logs. */
  reason: string;
}

const pct = (v: number) => `${Math.round(v)} %`;
const secs = (ms: number) => `${Math.round(ms / 1000)} s`;

export class OwnerBusyDetector {
  private busy = false;
  private since: number | null = null;
  /** Since when the owner's load has been on the other side of the threshold. */
  private crossedAt: number | null = null;
  private last: OwnerBusyState;

  constructor(private readonly opts: OwnerBusyOptions) {
    this.last = {
      busy: false,
      ownerCpuPercent: 0,
      since: null,
      reason: opts.thresholdPercent > 0 ? 'no load sample yet' : 'busy-owner detection is off (OWNER_BUSY_CPU_PERCENT=0)',
    };
  }

  get state(): OwnerBusyState {
    return { ...this.last };
  }

  /** Takes one sample (in time order) and returns the state after it. */
  feed(s: OwnerLoadSample): OwnerBusyState {
    const owner = Math.max(0, Math.min(100, (Number(s.hostCpuPercent) || 0) - (Number(s.tasksCpuPercent) || 0)));
    const t = this.opts.thresholdPercent;
    if (t <= 0) {
      this.last = { busy: false, ownerCpuPercent: owner, since: null, reason: 'busy-owner detection is off (OWNER_BUSY_CPU_PERCENT=0)' };
      return this.state;
    }
    const above = owner > t;
    // While idle we watch for load above the threshold; while busy, for load at or below it.
    if (above !== this.busy) this.crossedAt ??= s.at;
    else this.crossedAt = null;
    const held = this.crossedAt === null ? 0 : s.at - this.crossedAt;
    let reason: string;
    if (!this.busy) {
      if (above && held >= this.opts.busyAfterMs) {
        this.busy = true;
        this.since = s.at;
        this.crossedAt = null;
        reason = `the owner's own CPU use (${pct(owner)}) stayed above ${pct(t)} for ${secs(held)}`;
      } else if (above) {
        reason = `the owner's own CPU use (${pct(owner)}) is above ${pct(t)} for ${secs(held)}; busy after ${secs(this.opts.busyAfterMs)}`;
      } else {
        reason = `the owner's own CPU use (${pct(owner)}) is at most ${pct(t)}`;
      }
    } else if (!above && held >= this.opts.idleAfterMs) {
      this.busy = false;
      this.since = null;
      this.crossedAt = null;
      reason = `the owner's own CPU use (${pct(owner)}) stayed at most ${pct(t)} for ${secs(held)}`;
    } else if (!above) {
      reason = `the owner is busy; their CPU use (${pct(owner)}) is at most ${pct(t)} for ${secs(held)} of the ${secs(this.opts.idleAfterMs)} that end it`;
    } else {
      reason = `the owner is busy: their own CPU use is ${pct(owner)}, above ${pct(t)}`;
    }
    this.last = { busy: this.busy, ownerCpuPercent: owner, since: this.since, reason };
    return this.state;
  }
}
