/**
 * Keeps refusals from flooding the log: the first refusal from an address is logged at
 * once; later ones in the same window are counted and reported in one line when the
 * window has passed. At most `maxAddresses` are tracked, and at most `maxLines` lines
 * are written per window whatever the number of addresses (the rest are counted and
 * reported as one line).
 */
export class RefusalLog {
  private readonly seen = new Map<string, { windowStart: number; suppressed: number; reason: string }>();
  private lines = 0;
  private linesWindowStart = 0;
  private overflow = 0;

  constructor(
    private readonly emit: (entry: { address: string; reason: string; message: string; suppressed: number }) => void,
    private readonly windowMs = 60_000,
    private readonly maxAddresses = 1000,
    private readonly now: () => number = Date.now,
    private readonly maxLines = 100,
  ) {}

  refused(address: string, reason: string, message: string): void {
    const t = this.now();
    const s = this.seen.get(address);
    if (s && t - s.windowStart < this.windowMs) {
      s.suppressed += 1;
      s.reason = reason;
      return;
    }
    if (t - this.linesWindowStart >= this.windowMs) {
      this.linesWindowStart = t;
      this.lines = 0;
    }
    if (this.lines >= this.maxLines) {
      this.overflow += 1;
      return;
    }
    this.lines += 1;
    if (s) this.seen.delete(address);
    this.emit({ address, reason, message, suppressed: s?.suppressed ?? 0 });
    this.seen.set(address, { windowStart: t, suppressed: 0, reason });
    if (this.seen.size > this.maxAddresses) this.seen.delete(this.seen.keys().next().value as string);
  }

  /** Reports windows that ended with suppressed refusals (call it now and then). */
  flush(): void {
    const t = this.now();
    if (this.overflow > 0 && t - this.linesWindowStart >= this.windowMs) {
      this.emit({ address: '(many)', reason: 'FLOOD', message: `${this.overflow} more refusals from other addresses`, suppressed: this.overflow });
      this.overflow = 0;
    }
    for (const [address, s] of this.seen) {
      if (t - s.windowStart < this.windowMs) continue;
      if (s.suppressed > 0) this.emit({ address, reason: s.reason, message: `${s.suppressed} more refusals`, suppressed: s.suppressed });
      this.seen.delete(address);
    }
  }
}
