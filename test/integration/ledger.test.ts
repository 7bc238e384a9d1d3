import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { connectNodeState, NodeStateConnection } from '@hivemind/shared/state/node-state';
import { redisUrl, uniquePrefix } from '../support/stack';

const node = { cpuCores: 2, cpuScore: 200, memoryGb: 4, gpuScore: 0, gpuMemoryGb: 0, maxTasks: 3 };
const r = (cpuScore: number, memoryMb: number) => ({ cpuScore, memoryMb, gpuScore: 0, gpuMemoryGb: 0 });

describe('the resource ledger in Redis', () => {
  let state: NodeStateConnection;
  let ledger: ResourceLedger;

  beforeEach(() => {
    state = connectNodeState(redisUrl(), uniquePrefix('ledger'), 'test-ledger');
    ledger = state.ledger;
  });
  afterEach(() => state.close());

  it('never overcommits under concurrent reservations from many clients', async () => {
    // Ten connections to one node's state, as ten gateway replicas would hold.
    const prefix = uniquePrefix('ledger');
    const clients = Array.from({ length: 10 }, (_, i) => connectNodeState(redisUrl(), prefix, `test-ledger-${i}`));
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => clients[i % 10].ledger.reserve(`t${i}`, r(10, 100), node)));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(3);
    expect(outcomes.filter((o) => !o.ok).every((o) => !o.ok && o.reason === 'TASKS')).toBe(true);
    expect((await clients[0].ledger.totals()).tasks).toBe(3);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('refuses by cpu score and memory, saying how much is in use', async () => {
    expect(await ledger.reserve('a', r(150, 1024), node)).toEqual({ ok: true });
    expect(await ledger.reserve('b', r(100, 1024), node)).toEqual({
      ok: false,
      reason: 'CPU',
      message: 'node busy: cpu score 150 of 200 in use, the task asks 100',
    });
    expect(await ledger.reserve('c', r(10, 3500), node)).toMatchObject({ ok: false, reason: 'MEMORY' });
    expect(await ledger.reserve('a', r(1, 1), node)).toMatchObject({ ok: false, reason: 'DUPLICATE' });
  });

  it('prechecks without holding anything, with the same messages', async () => {
    expect(await ledger.precheck(r(150, 1024), node)).toEqual({ ok: true });
    expect((await ledger.totals()).tasks).toBe(0);
    await ledger.reserve('a', r(150, 1024), node);
    expect(await ledger.precheck(r(100, 1024), node)).toEqual({
      ok: false,
      reason: 'CPU',
      message: 'node busy: cpu score 150 of 200 in use, the task asks 100',
    });
  });

  it("stamps each reservation with Redis's clock", async () => {
    await ledger.reserve('a', r(1, 1), node);
    const at = (await ledger.entries()).get('a')!.at!;
    expect(Math.abs((await ledger.now()) - at)).toBeLessThan(5000);
  });

  it('frees a task on release', async () => {
    await ledger.reserve('a', r(200, 4096), node);
    expect(await ledger.reserve('b', r(1, 1), node)).toMatchObject({ ok: false });
    expect(await ledger.release('a')).toBe(true);
    expect(await ledger.release('a')).toBe(false);
    expect(await ledger.reserve('b', r(1, 1), node)).toEqual({ ok: true });
  });
});
