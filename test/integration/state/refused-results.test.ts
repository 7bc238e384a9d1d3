import { RefusedResult, REFUSED_RETRY_FIRST_MS, REFUSED_RETRY_MAX_MS, refusedRetryDelayMs } from '@hivemind/shared/state/refused-results';
import { openFixture, StateFixture } from './support';

const entry = (taskId: string, until: number, e: Partial<RefusedResult> = {}): RefusedResult => ({
  taskId,
  refusedAt: 1000,
  until,
  refusals: 1,
  message: 'unknown task',
  nextAt: 2000,
  ...e,
});

describe('RefusedResults (hash results:refused) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('refused')));
  afterEach(() => f.close());

  it('put, get, has, list (soonest deadline first), taskIds, count, remove', async () => {
    const { refused } = f.state;
    expect(await refused.get('a')).toBeNull();
    expect(await refused.has('a')).toBe(false);
    await refused.put(entry('a', 9000));
    await refused.put(entry('b', 5000));
    await refused.put(entry('c', 7000));
    await refused.put(entry('a', 9000, { refusals: 2, message: 'still unknown' })); // replaces a's
    expect(await refused.get('a')).toEqual(entry('a', 9000, { refusals: 2, message: 'still unknown' }));
    expect(await refused.has('a')).toBe(true);
    expect((await refused.list()).map((e) => e.taskId)).toEqual(['b', 'c', 'a']);
    expect(await refused.taskIds()).toEqual(new Set(['a', 'b', 'c']));
    expect(await refused.count()).toBe(3);
    await refused.remove('b');
    expect(await refused.has('b')).toBe(false);
    expect(await refused.count()).toBe(2);
  });

  it('refuses to store an entry of the wrong shape (no refusal counted)', async () => {
    await expect(f.state.refused.put(entry('x', 1, { refusals: 0 }))).rejects.toThrow();
    expect(await f.state.refused.has('x')).toBe(false);
  });

  it('leaves malformed and wrong-shaped entries out of get/list without throwing; taskIds and count still see them', async () => {
    await f.state.refused.put(entry('good', 5000));
    await f.raw.hset(f.keys.refusedResults, 'junk', '<html>', 'shape', JSON.stringify({ taskId: 'shape', until: 'never' }));
    expect(await f.state.refused.get('junk')).toBeNull();
    expect(await f.state.refused.get('shape')).toBeNull();
    expect((await f.state.refused.list()).map((e) => e.taskId)).toEqual(['good']);
    // The reconciler keeps the result file of every listed task, readable or not.
    expect(await f.state.refused.taskIds()).toEqual(new Set(['good', 'junk', 'shape']));
    expect(await f.state.refused.count()).toBe(3);
  });

  it('retries slowly and exponentially, never past the deadline', () => {
    const now = 1_000_000;
    const far = now + 10 * 86_400_000;
    expect(refusedRetryDelayMs(1, now, far)).toBe(REFUSED_RETRY_FIRST_MS);
    expect(refusedRetryDelayMs(3, now, far)).toBe(4 * REFUSED_RETRY_FIRST_MS);
    expect(refusedRetryDelayMs(50, now, far)).toBe(REFUSED_RETRY_MAX_MS);
    expect(refusedRetryDelayMs(1, now, now + 5000)).toBe(5000);
    expect(refusedRetryDelayMs(1, now, now - 5000)).toBe(0);
  });
});
