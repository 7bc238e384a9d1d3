import { batchOutput, POOL_OUTPUT_TAIL } from './output-relay.service';

describe('output batches for TaskOutputUpload', () => {
  it('joins new lines; the pool adds the final newline', () => {
    expect(batchOutput(['a', 'b'])).toBe('a\nb');
  });

  it('sends at most the tail the pool keeps, on a line boundary, saying what was skipped', () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i}`);
    const out = batchOutput(lines);
    expect(out.length).toBeLessThanOrEqual(POOL_OUTPUT_TAIL + 60);
    expect(out).toMatch(/^\[hivemind: \d+ characters skipped\]\nline \d+\n/);
    expect(out.endsWith('line 4999')).toBe(true);
  });
});
