import { QueueName, ResultJob } from '@hivemind/shared/queue/queues';
import { flushScripts, openFixture, StateFixture } from './support';

const node = { cpuCores: 2, cpuScore: 200, memoryGb: 4, gpuScore: 0, gpuMemoryGb: 0, maxTasks: 5 };
const share = { cpuScore: 10, memoryMb: 100, gpuScore: 0, gpuMemoryGb: 0 };
const result = (taskId: string, reason = 'exited with code 0'): ResultJob => ({
  taskId,
  status: 'Success',
  reason,
  exitCode: 0,
  receivedAt: 1000,
  startedAt: 2000,
  finishedAt: 5000,
});

describe('TaskRecords (hash task:<id>) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('records')));
  afterEach(() => f.close());

  /** BullMQ's lock of the task's job, as the executor holding the job has it. */
  const lockKey = (taskId: string) => `${f.keys.prefix}:q:${QueueName.Tasks}:${taskId}:lock`;
  const holdLock = (taskId: string, token: string) => f.raw.set(lockKey(taskId), token, 'PX', 30_000);

  it('reads back what admission, the reply and the upload wrote; null for no record; gone after remove', async () => {
    const { tasks } = f.state;
    expect(await tasks.get('t1')).toBeNull();
    await tasks.accepted('t1', 1234, 'ipv4:10.0.0.1:5555');
    expect(await tasks.get('t1')).toEqual({ acceptedAt: 1234, peer: 'ipv4:10.0.0.1:5555', repliedAt: null, result: null, uploadedAt: null });
    expect(await tasks.isReplied('t1')).toBe(false);
    expect(await tasks.isUploaded('t1')).toBe(false);
    await tasks.replied('t1', 2000);
    await tasks.uploaded('t1', 3000);
    expect(await tasks.isReplied('t1')).toBe(true);
    expect(await tasks.isUploaded('t1')).toBe(true);
    expect(await tasks.get('t1')).toMatchObject({ acceptedAt: 1234, repliedAt: 2000, uploadedAt: 3000 });
    await tasks.remove('t1');
    expect(await tasks.get('t1')).toBeNull();
    expect(await f.raw.exists(f.keys.task('t1'))).toBe(0);
  });

  it('reads a field that does not parse as null, and the others as they are', async () => {
    await f.raw.hset(f.keys.task('bad'), { acceptedAt: 'soon', peer: 'p', repliedAt: '2000', result: '{"taskId":', uploadedAt: 'Infinity' });
    expect(await f.state.tasks.get('bad')).toEqual({ acceptedAt: null, peer: 'p', repliedAt: 2000, result: null, uploadedAt: null });
    // A result of the wrong shape (JSON, but no ResultJob) is no result either.
    await f.raw.hset(f.keys.task('bad'), 'result', JSON.stringify({ taskId: 'bad', status: 'Maybe' }));
    expect((await f.state.tasks.get('bad'))!.result).toBeNull();
    expect(await f.state.tasks.recordedResult('bad')).toBeNull();
  });

  it('recordResult: stale token writes nothing; a released task writes nothing; the first result wins', async () => {
    const { tasks, ledger } = f.state;
    await tasks.accepted('t2', 1, 'peer');
    await holdLock('t2', 'token-A');
    expect(await tasks.holdsJobLock('t2', 'token-A')).toBe(true);
    expect(await tasks.holdsJobLock('t2', 'token-B')).toBe(false);

    // Another executor took the job over: this one is stale, even though the task holds its slot.
    expect(await ledger.reserve('t2', share, node)).toEqual({ ok: true });
    expect(await tasks.recordResult(result('t2'), 'token-B')).toEqual({ outcome: 'stale' });
    expect(await f.raw.hexists(f.keys.task('t2'), 'result')).toBe(0);

    // The right token, but the task no longer holds its slot.
    await ledger.release('t2');
    expect(await tasks.recordResult(result('t2'), 'token-A')).toEqual({ outcome: 'released' });
    expect(await f.raw.hexists(f.keys.task('t2'), 'result')).toBe(0);

    expect(await ledger.reserve('t2', share, node)).toEqual({ ok: true });
    expect(await tasks.recordResult(result('t2', 'first'), 'token-A')).toEqual({ outcome: 'recorded', result: result('t2', 'first') });
    // A later holder of the job finds the first result, not its own.
    await holdLock('t2', 'token-C');
    expect(await tasks.recordResult(result('t2', 'second'), 'token-C')).toEqual({ outcome: 'exists', result: result('t2', 'first') });
    expect(await tasks.recordedResult('t2')).toEqual(result('t2', 'first'));
    expect((await tasks.get('t2'))!.result).toEqual(result('t2', 'first'));
  });

  it('recordResult without any lock (the job was never taken, or its lock expired) is stale', async () => {
    expect(await f.state.ledger.reserve('t3', share, node)).toEqual({ ok: true });
    expect(await f.state.tasks.recordResult(result('t3'), 'token')).toEqual({ outcome: 'stale' });
    expect(await f.raw.exists(f.keys.task('t3'))).toBe(0);
  });

  it('recordResult still works after Redis forgot its scripts', async () => {
    const { tasks, ledger } = f.state;
    await holdLock('t4', 'tok');
    expect(await ledger.reserve('t4', share, node)).toEqual({ ok: true });
    expect(await tasks.recordResult(result('t4', 'one'), 'tok')).toMatchObject({ outcome: 'recorded' });
    await flushScripts(f.raw);
    expect(await tasks.recordResult(result('t4', 'two'), 'tok')).toEqual({ outcome: 'exists', result: result('t4', 'one') });
  });
});
