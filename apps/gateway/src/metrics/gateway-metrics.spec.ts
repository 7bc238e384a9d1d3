import { outcomeLabel } from './gateway-metrics.service';

describe('task outcome labels', () => {
  it('tells success, failure, stop and timeout apart', () => {
    expect(outcomeLabel({ status: 'Success', reason: 'exited with code 0' })).toBe('success');
    expect(outcomeLabel({ status: 'Failed', reason: 'exited with code 1' })).toBe('failed');
    expect(outcomeLabel({ status: 'Failed', reason: 'timed out after 5 s' })).toBe('timed_out');
    expect(outcomeLabel({ status: 'Stopped', reason: 'stopped at the request of the task owner' })).toBe('stopped');
  });
});
