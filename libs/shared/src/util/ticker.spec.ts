import { Ticker } from './ticker';

describe('Ticker', () => {
  it('never overlaps runs, and a kick during a run runs again right after', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    let release!: () => void;
    const t = new Ticker('t', 60_000, async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      runs += 1;
      if (runs === 1) await new Promise<void>((r) => (release = r));
      active -= 1;
    }, () => undefined);
    t.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(runs).toBe(1);
    t.kick();
    t.kick();
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect(runs).toBe(2);
    expect(maxActive).toBe(1);
    t.stop();
  });

  it('keeps going after a failing run', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const t = new Ticker('t', 5, async () => {
      runs += 1;
      throw new Error('boom');
    }, (_n, e) => errors.push(e));
    t.start();
    await new Promise((r) => setTimeout(r, 60));
    t.stop();
    expect(runs).toBeGreaterThan(2);
    expect(errors.length).toBe(runs);
  });
});
