import { RefusalLog } from './refusal-log';

describe('refusal log', () => {
  it('logs the first refusal per address, then one summary per window', () => {
    let now = 0;
    const lines: { address: string; suppressed: number }[] = [];
    const log = new RefusalLog((e) => lines.push({ address: e.address, suppressed: e.suppressed }), 60_000, 1000, () => now);
    for (let i = 0; i < 500; i++) log.refused('198.51.100.9', 'ADDRESS', 'no');
    log.refused('203.0.113.1', 'SECRET', 'no');
    expect(lines).toEqual([
      { address: '198.51.100.9', suppressed: 0 },
      { address: '203.0.113.1', suppressed: 0 },
    ]);
    now = 61_000;
    log.flush();
    expect(lines.slice(2)).toEqual([{ address: '198.51.100.9', suppressed: 499 }]);
    log.refused('198.51.100.9', 'ADDRESS', 'again');
    expect(lines).toHaveLength(4);
  });

  it('tracks a bounded number of addresses, and writes a bounded number of lines however many there are', () => {
    let now = 0;
    const lines: { address: string; suppressed: number }[] = [];
    const log = new RefusalLog((e) => lines.push({ address: e.address, suppressed: e.suppressed }), 60_000, 10, () => now, 50);
    for (let i = 0; i < 5000; i++) log.refused(`2001:db8::${i.toString(16)}`, 'ADDRESS', 'no');
    expect(lines).toHaveLength(50);
    expect((log as unknown as { seen: Map<string, unknown> }).seen.size).toBeLessThanOrEqual(10);
    now = 61_000;
    log.flush();
    expect(lines.at(-1)).toEqual({ address: '(many)', suppressed: 4950 });
  });
});
