import { newLogText, statusOf } from './submit-client';

describe('following a log the pool keeps as a tail', () => {
  it('prints only what is new', () => {
    expect(newLogText('', 'a\nb\n')).toBe('a\nb\n');
    expect(newLogText('a\nb\n', 'a\nb\nc\n')).toBe('c\n');
    expect(newLogText('a\nb\n', 'a\nb\n')).toBe('');
  });

  it('handles a tail that slid forward', () => {
    const full = Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join('');
    const before = full.slice(0, 300).slice(-100);
    const after = full.slice(0, 340).slice(-100);
    expect(before + newLogText(before, after)).toBe(full.slice(0, 340).slice(-(100 + 40)));
  });

  it('reads the status from execution_log.txt', () => {
    expect(statusOf('Task ID: x\nStatus: Failed\nReason: y')).toBe('Failed');
    expect(statusOf('nothing')).toBeNull();
  });
});
