import { PoolState } from './pool-state';

const config = {
  users: [
    { userId: 1, username: 'alice', password: 'pw', balance: 10 },
    { userId: 2, username: 'bob', password: 'pw', balance: 0 },
  ],
  DEVPOOL_LIVENESS_TIMEOUT: 60,
  DEVPOOL_HEARTBEAT_TIMEOUT: 180,
  DEVPOOL_NODE_FORGET: 900,
};

function setup() {
  let now = 1_000_000;
  const clock = { advance: (ms: number) => (now += ms) };
  const s = new PoolState(config, () => now);
  const register = (id: string, hostname = 'localhost') =>
    s.registerNode({
      node_id: id,
      hostname,
      cpu_cores: 2,
      memory_gb: 4,
      cpu_score: 200,
      gpu_score: 0,
      gpu_memory_gb: 0,
      location: '',
      port: 50053,
      gpu_name: '',
      docker_status: 'available',
    });
  const upload = (id: string, p: Partial<{ memory_gb: number; cpu_score: number }> = {}) =>
    s.upload('bob', {
      task_id: id,
      task_zip: Buffer.from('PK'),
      memory_gb: p.memory_gb ?? 1,
      cpu_score: p.cpu_score ?? 50,
      gpu_score: 0,
      gpu_memory_gb: 0,
      location: '',
      gpu_name: '',
      token: '',
      host_count: 1,
    });
  const idle = (id: string, status = 'Idle') => s.reportStatus(id, status, { cpu: 0, memory: 0, gpu: 0, gpuMemory: 0 }, 0, 'available');
  return { s, clock, register, upload, idle };
}

describe('devpool state', () => {
  it('dispatches only to nodes whose status is exactly Idle, with a fresh heartbeat, that can be dialled', () => {
    const { s, clock, register, idle } = setup();
    register('a');
    idle('a', 'idle');
    expect(s.dispatchable()).toHaveLength(0); // case-sensitive
    idle('a', 'Running 1 tasks');
    expect(s.dispatchable()).toHaveLength(0);
    idle('a');
    expect(s.dispatchable().map((n) => n.node_id)).toEqual(['a']);
    clock.advance(180_001);
    expect(s.dispatchable()).toHaveLength(0);
    register('loop', '127.0.0.1');
    idle('loop');
    expect(s.dispatchable()).toHaveLength(0);
  });

  it('sets a node with no running task Idle on every registration, whatever it last reported, as the deployed pool does', () => {
    const { s, register, idle } = setup();
    register('a');
    expect(s.nodes.get('a')!.status).toBe('Idle'); // a new node too
    idle('a', 'Paused');
    expect(s.dispatchable()).toHaveLength(0);
    register('a');
    expect(s.nodes.get('a')!.status).toBe('Idle');
    expect(s.dispatchable().map((n) => n.node_id)).toEqual(['a']);
  });

  it('keeps the status and tally of a node running a task when it registers; frees what leaked once none runs', () => {
    const { s, register, idle, upload } = setup();
    register('a');
    upload('t', { cpu_score: 100 });
    upload('fast', { cpu_score: 50 });
    s.recordDispatch(s.tasks.get('t')!, s.nodes.get('a')!);
    idle('a', 'Running 1 tasks');
    register('a');
    expect(s.nodes.get('a')!.status).toBe('Running 1 tasks');
    expect(s.nodes.get('a')!.alloc.cpuScore).toBe(100);
    // A result inside the ~200 ms window leaks its share until the node registers with nothing running.
    s.storeResult('fast', Buffer.from('zip'), 'a');
    s.recordDispatch(s.tasks.get('fast')!, s.nodes.get('a')!);
    s.storeResult('t', Buffer.from('zip'), 'a');
    expect(s.nodes.get('a')!.alloc.cpuScore).toBe(50);
    register('a');
    expect(s.nodes.get('a')!.alloc.cpuScore).toBe(0);
    expect(s.nodes.get('a')!.status).toBe('Idle');
  });

  it('validates task ids at upload and keeps tasks pending in order', () => {
    const { s, upload, clock } = setup();
    expect(upload('bad id!')).toEqual({ success: false, message: 'task_id may only contain letters, digits, "_" and "-"' });
    expect(upload('t1').success).toBe(true);
    expect(upload('t1').message).toMatch(/already exists/);
    clock.advance(1);
    upload('t2');
    expect(s.pending().map((t) => t.taskId)).toEqual(['t1', 't2']);
  });

  it('tallies what it handed out against the registered totals', () => {
    const { s, register, idle, upload } = setup();
    register('a');
    idle('a');
    upload('big', { cpu_score: 150 });
    upload('second', { cpu_score: 100 });
    const n = s.nodes.get('a')!;
    s.recordDispatch(s.tasks.get('big')!, n);
    expect(s.fits(s.tasks.get('second')!, n)).toBe(false);
    s.storeResult('big', Buffer.from('zip'), 'a');
    expect(s.fits(s.tasks.get('second')!, n)).toBe(true);
  });

  it('loses a result that lands before the dispatch is recorded, and leaks the allocation', () => {
    const { s, register, idle, upload } = setup();
    register('a');
    idle('a');
    upload('fast', { cpu_score: 200 });
    const t = s.tasks.get('fast')!;
    s.storeResult('fast', Buffer.from('zip'), 'a'); // result inside the ~200 ms window
    s.recordDispatch(t, s.nodes.get('a')!);
    expect(t.status).toBe('FAILED');
    expect(s.nodes.get('a')!.alloc.cpuScore).toBe(200);
  });

  it('keeps only the last 10,240 characters of output, one newline per upload', () => {
    const { s, upload } = setup();
    upload('t');
    s.appendOutput('t', 'first');
    s.appendOutput('t', 'x'.repeat(20_000));
    const log = s.tasks.get('t')!.log;
    expect(log.length).toBe(10_240);
    expect(log.endsWith('x\n')).toBe(true);
    expect(log).not.toContain('first');
  });

  it('fails RUNNING tasks of a node silent for 60 s (120 s while it says Running), without redispatch', () => {
    const { s, clock, register, idle, upload } = setup();
    register('a');
    idle('a');
    upload('t');
    s.recordDispatch(s.tasks.get('t')!, s.nodes.get('a')!);
    clock.advance(59_000);
    expect(s.enforceLiveness()).toHaveLength(0);
    idle('a', 'Running 1 tasks');
    clock.advance(100_000);
    expect(s.enforceLiveness()).toHaveLength(0);
    clock.advance(21_000);
    expect(s.enforceLiveness().map((t) => t.taskId)).toEqual(['t']);
    expect(s.tasks.get('t')!.status).toBe('FAILED');
    expect(s.pending()).toHaveLength(0);
    clock.advance(900_000);
    s.enforceLiveness();
    expect(s.nodes.size).toBe(0);
  });

  it('marks a result COMPLETED whatever it holds, keeps STOPPED, and credits the worker', () => {
    const { s, clock, register, idle, upload } = setup();
    register('alice');
    idle('alice');
    upload('t');
    upload('u');
    s.recordDispatch(s.tasks.get('t')!, s.nodes.get('alice')!);
    clock.advance(90_000);
    s.storeResult('t', Buffer.from('zip'), 'alice');
    expect(s.tasks.get('t')!.status).toBe('COMPLETED');
    expect(s.users.get('alice')!.balance).toBe(12);
    s.stop('u');
    s.storeResult('u', Buffer.from('zip'), 'alice');
    expect(s.tasks.get('u')!.status).toBe('STOPPED');
    expect(s.tasks.get('u')!.result).not.toBeNull();
  });
});
