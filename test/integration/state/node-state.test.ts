import IORedis from 'ioredis';
import { connectNodeState, openNodeState } from '@hivemind/shared/state/node-state';
import { redisUrl, uniquePrefix } from '../../support/stack';

describe('openNodeState / connectNodeState against real Redis', () => {
  it('registers each script once per connection, however many times the state is opened', async () => {
    const conn = new IORedis(redisUrl());
    try {
      const define = jest.spyOn(conn, 'defineCommand');
      const a = openNodeState(conn, uniquePrefix('ns-a'));
      const names = define.mock.calls.map((c) => c[0]).sort();
      expect(names).toEqual(['hivemindAddUsageSample', 'hivemindPruneExecutors', 'hivemindRecordResult', 'hivemindReleaseIfOwner', 'hivemindReserve']);
      const b = openNodeState(conn, uniquePrefix('ns-b'));
      expect(define).toHaveBeenCalledTimes(names.length);
      // Both states' scripts work, each on its own keys.
      const now = Date.now();
      const beat = { executorId: 'e1', runtime: 'docker' as const, docker: 'available' as const, running: 0, concurrency: 1, seenAt: 1 };
      await a.executors.beat(beat);
      await b.executors.beat({ ...beat, seenAt: now });
      expect(await a.executors.prune(now)).toEqual(['e1']);
      expect(await b.executors.prune(now)).toEqual([]);
      await b.executors.remove('e1');
    } finally {
      await conn.quit();
    }
  });

  it('connectNodeState pings, keeps prefixes apart, and closes', async () => {
    const prefix = uniquePrefix('ns-conn');
    const s = connectNodeState(redisUrl(), prefix, 'test');
    const other = connectNodeState(redisUrl(), uniquePrefix('ns-other'), 'test');
    try {
      expect(await s.ping()).toBe(true);
      await s.control.pause('test');
      expect(await s.control.isPaused()).toBe(true);
      expect(await other.control.isPaused()).toBe(false);
      await s.control.resume();
    } finally {
      await s.close();
      await other.close();
    }
    await expect(s.ping()).rejects.toThrow();
  });
});
