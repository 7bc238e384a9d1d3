import { openNodeState } from '@hivemind/shared/state/node-state';
import { flushScripts, openFixture, StateFixture } from './support';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('GpuAllocations (hash gpus, lock gpus:lock) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('gpus')));
  afterEach(() => f.close());

  it('change sets and deletes holders, releases its lock, and returns what fn returned', async () => {
    const { gpus } = f.state;
    expect(await gpus.any()).toBe(false);
    expect(await gpus.change(async (v) => {
      expect(v.holders).toEqual(new Map());
      expect(await f.raw.exists(f.keys.gpuLock)).toBe(1); // held while fn runs
      await v.set('GPU-a', ['t1', 't2']);
      await v.set('GPU-b', ['t3']);
      return 'done';
    })).toBe('done');
    expect(await f.raw.exists(f.keys.gpuLock)).toBe(0);
    expect(await gpus.holders()).toEqual(new Map([['GPU-a', ['t1', 't2']], ['GPU-b', ['t3']]]));
    expect(await gpus.any()).toBe(true);
    await gpus.change(async (v) => {
      expect(v.holders.get('GPU-a')).toEqual(['t1', 't2']);
      await v.set('GPU-a', []);
      await v.set('GPU-b', []);
    });
    expect(await f.raw.hexists(f.keys.gpus, 'GPU-a')).toBe(0);
    expect(await gpus.holders()).toEqual(new Map());
    expect(await gpus.any()).toBe(false);
  });

  it('releases its lock when fn throws', async () => {
    await expect(f.state.gpus.change(async () => {
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(await f.raw.exists(f.keys.gpuLock)).toBe(0);
  });

  it('two concurrent changes (two executors) never interleave', async () => {
    const other = openNodeState(f.raw, f.keys.prefix); // a second connection, as a second executor has
    const addHolder = (g: typeof f.state.gpus, taskId: string) =>
      g.change(async (v) => {
        const before = v.holders.get('GPU-a') ?? [];
        await pause(30); // read-modify-write with a gap: without the lock one write would be lost
        await v.set('GPU-a', [...before, taskId]);
      });
    await Promise.all([addHolder(f.state.gpus, 't1'), addHolder(other.gpus, 't2'), addHolder(f.state.gpus, 't3')]);
    expect((await f.state.gpus.holders()).get('GPU-a')!.sort()).toEqual(['t1', 't2', 't3']);
  });

  it('throws when the lock stays taken by someone else for waitMs, and leaves their lock alone', async () => {
    await f.raw.set(f.keys.gpuLock, 'someone-else', 'PX', 5000);
    let ran = false;
    await expect(f.state.gpus.change(async () => {
      ran = true;
    }, 120)).rejects.toThrow('the GPU allocation lock stayed taken for 0.12 s');
    expect(ran).toBe(false);
    expect(await f.raw.get(f.keys.gpuLock)).toBe('someone-else');
  });

  it('waits for a lock that is released meanwhile', async () => {
    await f.raw.set(f.keys.gpuLock, 'someone-else', 'PX', 150);
    await f.state.gpus.change(async (v) => v.set('GPU-a', ['t1']), 5000);
    expect(await f.state.gpus.holders()).toEqual(new Map([['GPU-a', ['t1']]]));
  });

  it("does not release a lock that lapsed and was taken by someone else while fn ran", async () => {
    await f.state.gpus.change(async () => {
      await f.raw.set(f.keys.gpuLock, 'next-holder', 'PX', 5000); // as if ours expired and another took it
    });
    expect(await f.raw.get(f.keys.gpuLock)).toBe('next-holder');
  });

  it('the lock release still works after Redis forgot its scripts', async () => {
    await f.state.gpus.change(async (v) => v.set('GPU-a', ['t1']));
    await flushScripts(f.raw);
    await f.state.gpus.change(async (v) => v.set('GPU-a', ['t1', 't2']));
    expect(await f.raw.exists(f.keys.gpuLock)).toBe(0);
    // A following change does not have to wait for the lock to expire.
    await f.state.gpus.change(async (v) => v.set('GPU-a', []), 200);
    expect(await f.state.gpus.any()).toBe(false);
  });

  it('holders leaves malformed and wrong-shaped entries out without throwing', async () => {
    await f.raw.hset(f.keys.gpus, 'GPU-a', JSON.stringify(['t1']), 'GPU-b', 'not json', 'GPU-c', JSON.stringify([1, 2]), 'GPU-d', JSON.stringify({ t: 1 }));
    expect(await f.state.gpus.holders()).toEqual(new Map([['GPU-a', ['t1']]]));
    await f.state.gpus.change(async (v) => {
      expect([...v.holders.keys()]).toEqual(['GPU-a']);
    });
  });
});
