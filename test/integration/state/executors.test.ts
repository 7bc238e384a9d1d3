import { EXECUTOR_PRUNE_MS, ExecutorBeat } from '@hivemind/shared/state/executors';
import { flushScripts, openFixture, StateFixture } from './support';

const beat = (executorId: string, seenAt: number, extra: Partial<ExecutorBeat> = {}): ExecutorBeat => ({
  executorId,
  runtime: 'docker',
  docker: 'available',
  running: 0,
  concurrency: 1,
  seenAt,
  ...extra,
});

describe('Executors (hash executors) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('executors')));
  afterEach(() => f.close());

  it('beat, all, remove', async () => {
    const { executors } = f.state;
    expect(await executors.all()).toEqual([]);
    await executors.beat(beat('e1', 1000));
    await executors.beat(beat('e2', 2000, { problem: 'the task image is missing' }));
    await executors.beat(beat('e1', 3000, { running: 1 })); // replaces e1's
    const all = (await executors.all()).sort((a, b) => a.executorId.localeCompare(b.executorId));
    expect(all).toEqual([beat('e1', 3000, { running: 1 }), beat('e2', 2000, { problem: 'the task image is missing' })]);
    await executors.remove('e1');
    expect((await executors.all()).map((b) => b.executorId)).toEqual(['e2']);
  });

  it('refuses to store a beat of the wrong shape', async () => {
    await expect(f.state.executors.beat({ ...beat('e1', 1), runtime: 'vm' } as unknown as ExecutorBeat)).rejects.toThrow();
    expect(await f.raw.hlen(f.keys.executors)).toBe(0);
  });

  it('all() leaves malformed and wrong-shaped entries out without throwing', async () => {
    await f.state.executors.beat(beat('good', Date.now()));
    await f.raw.hset(f.keys.executors, 'junk', '{oops', 'shape', JSON.stringify({ executorId: 'shape', seenAt: Date.now() }));
    expect((await f.state.executors.all()).map((b) => b.executorId)).toEqual(['good']);
  });

  it('prune deletes only entries older than the cut-off, or unreadable ones, and returns their ids', async () => {
    const now = 10_000_000;
    const cutoff = now - EXECUTOR_PRUNE_MS;
    await f.state.executors.beat(beat('old', cutoff - 1));
    await f.state.executors.beat(beat('edge', cutoff)); // exactly at the cut-off: not older
    await f.state.executors.beat(beat('fresh', now - 1000));
    await f.raw.hset(f.keys.executors, 'junk', 'not json', 'array', '[1,2]', 'noSeen', JSON.stringify({ executorId: 'noSeen' }), 'null', 'null');
    expect((await f.state.executors.prune(now)).sort()).toEqual(['array', 'junk', 'noSeen', 'null', 'old']);
    expect((await f.raw.hkeys(f.keys.executors)).sort()).toEqual(['edge', 'fresh']);
    expect(await f.state.executors.prune(now)).toEqual([]);
    // A shorter maxAgeMs prunes more.
    expect(await f.state.executors.prune(now, 500)).toEqual(expect.arrayContaining(['edge', 'fresh']));
    expect(await f.raw.hlen(f.keys.executors)).toBe(0);
  });

  it('a beat written after the cut-off survives the prune of the one it replaced', async () => {
    const now = 50_000_000;
    await f.state.executors.beat(beat('e1', now - EXECUTOR_PRUNE_MS - 5000));
    // The executor came back and beat again before the reconciler pruned.
    await f.state.executors.beat(beat('e1', now));
    expect(await f.state.executors.prune(now)).toEqual([]);
    expect(await f.state.executors.all()).toEqual([beat('e1', now)]);
  });

  it('prune still works after Redis forgot its scripts', async () => {
    const now = 20_000_000;
    await f.state.executors.beat(beat('old1', 1));
    expect(await f.state.executors.prune(now)).toEqual(['old1']);
    await flushScripts(f.raw);
    await f.state.executors.beat(beat('old2', 1));
    await f.state.executors.beat(beat('new', now));
    expect(await f.state.executors.prune(now)).toEqual(['old2']);
    expect((await f.state.executors.all()).map((b) => b.executorId)).toEqual(['new']);
  });
});
