import { outcomeLabel } from './gateway-metrics.service';

describe('task outcome labels', () => {
  it('tells success, failure, stop and timeout apart', () => {
    expect(outcomeLabel({ status: 'Success', reason: 'exited with code 0' })).toBe('success');
    expect(outcomeLabel({ status: 'Failed', reason: 'exited with code 1' })).toBe('failed');
    expect(outcomeLabel({ status: 'Failed', reason: 'timed out after 5 s' })).toBe('timed_out');
    expect(outcomeLabel({ status: 'Stopped', reason: 'stopped at the request of the task owner' })).toBe('stopped');
  });

  it('reads the outcome code, not the sentence, when the result has one', () => {
    expect(outcomeLabel({ status: 'Failed', code: 'timed_out', reason: 'timed out after 5 s (INSTALL_TIMEOUT)' })).toBe('timed_out');
    // A task that printed "timed out" itself is not a timeout.
    expect(outcomeLabel({ status: 'Failed', code: 'install_failed', reason: 'timed out waiting for the index' })).toBe('failed');
  });
});
