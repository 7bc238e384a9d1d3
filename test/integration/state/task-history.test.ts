import { TaskHistoryEntry } from '@hivemind/shared/state/task-history';
import { flushScripts, openFixture, StateFixture } from './support';

const entry = (taskId: string): TaskHistoryEntry => ({
  taskId,
  status: 'Success',
  reason: 'exited with code 0',
  exitCode: 0,
  receivedAt: 500,
  startedAt: 1000,
  finishedAt: 61_000,
  uploadedAt: 62_000,
  delivery: 'uploaded',
  durationSeconds: 60,
  queueWaitSeconds: 0.5,
  resultBytes: 123,
  avgCpuPercent: 10,
  avgMemoryPercent: 20,
  usageSamples: 2,
  cpt: { inputs: { durationSeconds: 60, avgCpuPercent: 10, avgMemoryPercent: 20, avgGpuPercent: 0 }, base: 10, usagePercent: 15, usageMultiplier: 0.8, timeBonus: 1 / 60, gpuBonus: 0, total: 1 },
  cptExplained: '10 x 0.8 x 1/60 -> 1',
  logsTail: 'done\n',
});

// test/integration/task-history.test.ts covers TaskHistoryService (sampling running tasks,
// CPT estimates); this file covers the repository it stores through.
describe('TaskHistoryRepository (history, usage:<id>) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('history')));
  afterEach(() => f.close());

  it('addUsageSample counts a sample once per `at` (a repeat or an older one is ignored) and averages them', async () => {
    const { history } = f.state;
    expect(await history.averages('t1')).toEqual({ cpu: 0, memory: 0, samples: 0 });
    expect(await history.addUsageSample('t1', 2000, 90, 80, 3600)).toBe(true);
    expect(await history.addUsageSample('t1', 2000, 90, 80, 3600)).toBe(false);
    expect(await history.addUsageSample('t1', 1500, 0, 0, 3600)).toBe(false);
    expect(await history.addUsageSample('t1', 3000, 70, 60, 3600)).toBe(true);
    expect(await history.averages('t1')).toEqual({ cpu: 80, memory: 70, samples: 2 });
    expect(await history.averages('t2')).toEqual({ cpu: 0, memory: 0, samples: 0 });
    const ttl = await f.raw.ttl(f.keys.taskUsage('t1'));
    expect(ttl).toBeGreaterThan(3500);
    expect(ttl).toBeLessThanOrEqual(3600);
  });

  it('addUsageSample still works after Redis forgot its scripts', async () => {
    const { history } = f.state;
    expect(await history.addUsageSample('t1', 1000, 10, 10, 60)).toBe(true);
    await flushScripts(f.raw);
    expect(await history.addUsageSample('t1', 1000, 10, 10, 60)).toBe(false);
    expect(await history.addUsageSample('t1', 2000, 30, 50, 60)).toBe(true);
    expect(await history.averages('t1')).toEqual({ cpu: 20, memory: 30, samples: 2 });
  });

  it('append keeps the newest `keep` entries and deletes the task\'s usage sums; list(limit) is newest first', async () => {
    const { history } = f.state;
    await history.addUsageSample('c', 1000, 50, 50, 60);
    await history.addUsageSample('a', 1000, 50, 50, 60);
    for (const id of ['a', 'b', 'c', 'd']) await history.append(entry(id), 3);
    expect(await f.raw.llen(f.keys.history)).toBe(3);
    expect((await history.list(10)).map((e) => e.taskId)).toEqual(['d', 'c', 'b']);
    expect((await history.list(2)).map((e) => e.taskId)).toEqual(['d', 'c']);
    expect(await history.list(10)).toContainEqual(entry('c'));
    expect(await f.raw.exists(f.keys.taskUsage('c'))).toBe(0);
    expect(await f.raw.exists(f.keys.taskUsage('a'))).toBe(0);
  });

  it('refuses to append an entry of the wrong shape, and keeps its usage sums', async () => {
    await f.state.history.addUsageSample('x', 1000, 50, 50, 60);
    await expect(f.state.history.append({ ...entry('x'), status: 'Fine' } as unknown as TaskHistoryEntry, 3)).rejects.toThrow();
    expect(await f.raw.llen(f.keys.history)).toBe(0);
    expect(await f.state.history.averages('x')).toMatchObject({ samples: 1 });
  });

  it('list leaves malformed and wrong-shaped entries out without throwing', async () => {
    await f.state.history.append(entry('a'), 10);
    await f.raw.lpush(f.keys.history, 'garbage', JSON.stringify({ ...entry('b'), cpt: { total: 'lots' } }));
    await f.state.history.append(entry('c'), 10);
    expect((await f.state.history.list(10)).map((e) => e.taskId)).toEqual(['c', 'a']);
  });
});
