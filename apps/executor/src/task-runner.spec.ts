import { outcomeOf } from './task-runner.service';

const flags = { stopReason: null, timedOut: false, timeoutSec: 30, memoryBytes: 256 * 1048576 };

describe('task outcome', () => {
  it('is Success only for exit code 0', () => {
    expect(outcomeOf({ exitCode: 0, oomKilled: false }, flags)).toEqual({ status: 'Success', reason: 'exited with code 0' });
    expect(outcomeOf({ exitCode: 3, oomKilled: false }, flags)).toEqual({ status: 'Failed', reason: 'exited with code 3' });
  });

  it('says out of memory, timed out, or stopped rather than a bare exit code', () => {
    expect(outcomeOf({ exitCode: 137, oomKilled: true }, flags).reason).toBe(
      'out of memory: the task passed its limit of 256 MB and was killed',
    );
    expect(outcomeOf({ exitCode: 137, oomKilled: false }, { ...flags, timedOut: true })).toEqual({ status: 'Failed', reason: 'timed out after 30 s' });
    expect(outcomeOf({ exitCode: 143, oomKilled: false }, { ...flags, stopReason: 'stopped because the node is shutting down' })).toEqual({
      status: 'Stopped',
      reason: 'stopped because the node is shutting down',
    });
    expect(outcomeOf({ exitCode: null, oomKilled: false, error: 'the container failed: boom' }, flags).reason).toBe('the container failed: boom');
  });
});

describe('a task killed for breaking a limit', () => {
  it('fails with the limit named, unless its owner stopped it first', () => {
    const failReason = 'workspace quota exceeded: the task wrote more than its 32 MB workspace quota (WORKSPACE_QUOTA_MB) and was stopped';
    expect(outcomeOf({ exitCode: 137, oomKilled: false }, { ...flags, failReason })).toEqual({ status: 'Failed', reason: failReason });
    expect(outcomeOf({ exitCode: 137, oomKilled: false }, { ...flags, failReason, stopReason: 'stopped at the request of the task owner' }).status).toBe('Stopped');
  });
});
