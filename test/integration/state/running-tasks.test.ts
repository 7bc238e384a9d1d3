import { RunningTask } from '@hivemind/shared/state/running-tasks';
import { openFixture, StateFixture } from './support';

const task = (t: Partial<RunningTask> = {}): RunningTask => ({ executorId: 'e1', startedAt: 1000, cpuPercent: 0, memoryPercent: 0, memoryBytes: 0, usageAt: 1000, ...t });

describe('RunningTasks (hash running) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('running')));
  afterEach(() => f.close());

  it('start, sample (stamped), get, all, taskIds, count, remove', async () => {
    const { running } = f.state;
    expect(await running.get('a')).toBeNull();
    expect(await running.count()).toBe(0);
    await running.start('a', task());
    await running.start('b', task({ executorId: 'e2' }));
    expect(await running.get('a')).toEqual(task());
    await running.sample('a', task(), { cpuPercent: 150, memoryPercent: 40, memoryBytes: 4096 }, 7000);
    expect(await running.get('a')).toEqual(task({ cpuPercent: 150, memoryPercent: 40, memoryBytes: 4096, usageAt: 7000 }));
    expect(await running.all()).toEqual(new Map([
      ['a', task({ cpuPercent: 150, memoryPercent: 40, memoryBytes: 4096, usageAt: 7000 })],
      ['b', task({ executorId: 'e2' })],
    ]));
    expect((await running.taskIds()).sort()).toEqual(['a', 'b']);
    expect(await running.count()).toBe(2);
    expect(await running.remove('a')).toBe(true);
    expect(await running.remove('a')).toBe(false);
    expect(await running.taskIds()).toEqual(['b']);
  });

  it('refuses to store an entry of the wrong shape', async () => {
    await expect(f.state.running.start('x', { ...task(), startedAt: 'now' } as unknown as RunningTask)).rejects.toThrow();
    expect(await f.raw.hexists(f.keys.running, 'x')).toBe(0);
  });

  it('leaves malformed and wrong-shaped entries out of get/all without throwing, but lists and counts them', async () => {
    await f.state.running.start('good', task());
    await f.raw.hset(f.keys.running, 'junk', 'not json', 'shape', JSON.stringify({ executorId: 'e1', startedAt: 'yesterday' }), 'null', 'null');
    expect(await f.state.running.get('junk')).toBeNull();
    expect(await f.state.running.get('shape')).toBeNull();
    expect(await f.state.running.get('null')).toBeNull();
    expect([...(await f.state.running.all()).keys()]).toEqual(['good']);
    // The reconciler still sees every id (it must clean up unreadable entries too).
    expect((await f.state.running.taskIds()).sort()).toEqual(['good', 'junk', 'null', 'shape']);
    expect(await f.state.running.count()).toBe(4);
  });
});
