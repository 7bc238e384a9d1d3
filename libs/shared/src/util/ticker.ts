/**
 * Runs a job every `ms`, never two at once: a slow run delays the next instead of
 * piling up. Errors go to onError and do not stop the ticker.
 */
export class Ticker {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = true;
  private kicked = false;

  constructor(
    readonly name: string,
    private readonly ms: number,
    private readonly job: () => Promise<void>,
    private readonly onError: (name: string, err: unknown) => void,
  ) {}

  start(runNow = true): void {
    this.stopped = false;
    this.schedule(runNow ? 0 : this.ms);
  }

  /** Runs the job now, or right after the run in progress, then keeps the period. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.kicked = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    this.running = true;
    const started = Date.now();
    try {
      await this.job();
    } catch (err) {
      this.onError(this.name, err);
    } finally {
      this.running = false;
      const again = this.kicked;
      this.kicked = false;
      if (!this.stopped) this.schedule(again ? 0 : Math.max(0, this.ms - (Date.now() - started)));
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Capped exponential backoff: 1 s, 2 s, 4 s ... up to capMs. */
export function backoffMs(attempt: number, baseMs = 1000, capMs = 30000): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** The promise's value, or `fallback` if it has not settled within `ms` (or it failed). */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  try {
    return await Promise.race([promise.catch(() => fallback), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
