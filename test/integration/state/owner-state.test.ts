import type { OwnerState } from '@hivemind/shared/owner/owner-state';
import { openFixture, StateFixture, until } from './support';

const state = (s: Partial<OwnerState> = {}): OwnerState => ({
  busy: true,
  ownerCpuPercent: 73.5,
  since: 12345,
  reason: 'the owner uses 73 % of the CPU',
  frozenTasks: ['t1'],
  scheduleOpen: true,
  ...s,
});

describe('OwnerStateRepository (owner:state, owner:frozen) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('owner')));
  afterEach(() => f.close());

  it('publishes the state with a TTL and reads it back until it expires', async () => {
    const { owner } = f.state;
    expect(await owner.read()).toBeNull();
    await owner.publish(state(), 3000);
    expect(await owner.read()).toEqual(state());
    const pttl = await f.raw.pttl(f.keys.ownerState);
    expect(pttl).toBeGreaterThan(2000);
    expect(pttl).toBeLessThanOrEqual(3000);
    await owner.publish(state({ busy: false, since: null, frozenTasks: [] }), 3000);
    expect(await owner.read()).toEqual(state({ busy: false, since: null, frozenTasks: [] }));
    // The monitor stopped writing: the state goes away by itself.
    await f.raw.pexpire(f.keys.ownerState, 20);
    await until('the owner state to expire', async () => (await owner.read()) === null);
  });

  it('never publishes with a TTL under a second', async () => {
    await f.state.owner.publish(state(), 10);
    expect(await f.raw.pttl(f.keys.ownerState)).toBeGreaterThan(500);
  });

  it('refuses to publish a state of the wrong shape', async () => {
    await expect(f.state.owner.publish({ ...state(), busy: 'yes' } as unknown as OwnerState, 3000)).rejects.toThrow();
    expect(await f.raw.exists(f.keys.ownerState)).toBe(0);
  });

  it('reads a malformed or wrong-shaped state as none, without throwing', async () => {
    await f.raw.set(f.keys.ownerState, 'not json');
    expect(await f.state.owner.read()).toBeNull();
    await f.raw.set(f.keys.ownerState, JSON.stringify({ busy: true }));
    expect(await f.state.owner.read()).toBeNull();
  });

  it('frozen / thawed / frozenTaskIds (sorted)', async () => {
    const { owner } = f.state;
    expect(await owner.frozenTaskIds()).toEqual([]);
    await owner.frozen('b', 1000);
    await owner.frozen('a', 2000);
    await owner.frozen('c', 3000);
    expect(await owner.frozenTaskIds()).toEqual(['a', 'b', 'c']);
    expect(await f.raw.hget(f.keys.ownerFrozen, 'a')).toBe('2000');
    await owner.thawed('b');
    await owner.thawed('nope');
    expect(await owner.frozenTaskIds()).toEqual(['a', 'c']);
  });
});
