import { openNodeState } from '@hivemind/shared/state/node-state';
import { openFixture, StateFixture } from './support';

describe('CallerRefusals (hash stats:caller-refusals) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('refusals')));
  afterEach(() => f.close());

  it('counts each refusal by reason, across connections', async () => {
    expect(await f.state.callerRefusals.all()).toEqual(new Map());
    const g = openFixture('refusals-b');
    try {
      await f.state.callerRefusals.count('unknown-peer');
      await f.state.callerRefusals.count('unknown-peer');
      await f.state.callerRefusals.count('bad-token');
      expect(await f.state.callerRefusals.all()).toEqual(new Map([['unknown-peer', 2], ['bad-token', 1]]));
      // Another prefix counts on its own.
      expect(await g.state.callerRefusals.all()).toEqual(new Map());
    } finally {
      await g.close();
    }
    // Counts survive a new connection (a restart).
    const again = openFixture('refusals-c');
    try {
      expect(await openNodeState(again.conn, f.keys.prefix).callerRefusals.all()).toEqual(new Map([['unknown-peer', 2], ['bad-token', 1]]));
    } finally {
      await again.close();
    }
  });

  it('reads a count that is not a number as 0', async () => {
    await f.raw.hset(f.keys.callerRefusals, 'weird', 'lots');
    await f.state.callerRefusals.count('fine');
    expect(await f.state.callerRefusals.all()).toEqual(new Map([['weird', 0], ['fine', 1]]));
  });
});
