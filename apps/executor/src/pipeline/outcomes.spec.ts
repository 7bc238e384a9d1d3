import { outcomes, OUTCOME_CODES } from '@hivemind/shared/task-format/outcome';
import { TaskCancelled, withBudget } from './cancellation';
import { LiveTask } from './live-task';
import { outcomeOfExit } from './run-task.step';

const MB256 = 256 * 1048576;

describe('a run that nobody cancelled', () => {
  it('is Success only for exit code 0', () => {
    expect(outcomeOfExit({ exitCode: 0, oomKilled: false }, MB256)).toEqual({ code: 'succeeded', status: 'Success', reason: 'exited with code 0' });
    expect(outcomeOfExit({ exitCode: 3, oomKilled: false }, MB256)).toEqual({ code: 'exited_with_error', status: 'Failed', reason: 'exited with code 3' });
  });

  it('says out of memory or the runtime error rather than a bare exit code', () => {
    expect(outcomeOfExit({ exitCode: 137, oomKilled: true }, MB256)).toEqual({
      code: 'out_of_memory',
      status: 'Failed',
      reason: 'out of memory: the task passed its limit of 256 MB and was killed',
    });
    expect(outcomeOfExit({ exitCode: null, oomKilled: false, error: 'the container failed: boom' }, MB256)).toMatchObject({ code: 'runtime_failed', reason: 'the container failed: boom' });
  });
});

describe('a task cancelled while it runs', () => {
  it('ends with the first cancellation: a limit named unless the owner stopped it first', () => {
    const quota = outcomes.quotaExceeded(32 * 1048576, 'stopped');
    const live = new LiveTask('t1');
    expect(live.cancel(quota)).toBe(true);
    expect(live.cancel(outcomes.stopped('stopped at the request of the task owner'))).toBe(false);
    expect(live.cancelledWith).toEqual(quota);
    expect(quota.reason).toBe('workspace quota exceeded: the task wrote more than its 32 MB workspace quota (WORKSPACE_QUOTA_MB) and was stopped');

    const stopped = new LiveTask('t2');
    stopped.cancel(outcomes.stopped('stopped at the request of the task owner'));
    stopped.cancel(quota);
    expect(stopped.cancelledWith).toMatchObject({ code: 'stopped', status: 'Stopped' });
  });

  it('keeps its run outcome once it moves on to packing, with a fresh signal for the steps after', () => {
    const live = new LiveTask('t3');
    live.cancel(outcomes.timedOut(30));
    expect(live.signal.aborted).toBe(true);
    live.finishing();
    expect(live.signal.aborted).toBe(false);
    expect(live.cancelledWith).toEqual({ code: 'timed_out', status: 'Failed', reason: 'timed out after 30 s' });
    // A stop while packing cuts packing short, and the run's outcome still stands.
    live.cancel(outcomes.stopped('stopped because the node is shutting down'));
    expect(live.signal.aborted).toBe(true);
    expect(live.cancelledWith?.code).toBe('timed_out');
  });
});

describe('a step budget', () => {
  it('aborts with the step outcome after its time, or with the task reason when the task is cancelled first', async () => {
    const parent = new AbortController();
    const b = withBudget(parent.signal, 10, () => outcomes.stepOverBudget('pack', 'took too long'));
    await new Promise((r) => setTimeout(r, 30));
    expect((b.signal.reason as TaskCancelled).outcome.code).toBe('step_over_budget');
    b.done();

    const c = withBudget(parent.signal, 60_000, () => outcomes.stepOverBudget('pack', 'took too long'));
    parent.abort(new TaskCancelled(outcomes.stopped('stopped')));
    expect((c.signal.reason as TaskCancelled).outcome.code).toBe('stopped');
    c.done();
  });

  it('every code has a status', () => {
    for (const code of OUTCOME_CODES) expect(code).toMatch(/^[a-z_]+$/);
  });
});
