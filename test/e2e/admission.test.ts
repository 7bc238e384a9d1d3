import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { ExecuteTaskRequest, WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { QueueName } from '@hivemind/shared/queue/queues';
import { NodeStateConnection } from '@hivemind/shared/state/node-state';
import { nodeStateOf, queueOf } from '../support/node-state';
import { executeRequest, ownerClient, taskInfo, uploadTask } from '../support/pool';
import { makeZip, makeZipWithRawName } from '../support/zips';
import { Stack, waitFor } from '../support/stack';

/**
 * The gateway's ExecuteTask, called directly as the pool calls it: bad input gets
 * success=false with a message naming the problem, and nothing is stored, held or run.
 */
describe('ExecuteTask admission', () => {
  let stack: Stack;
  let worker: WorkerNodeServiceClient;
  let state: NodeStateConnection;

  beforeAll(async () => {
    stack = await Stack.create('admit', { ZIP_MAX_ENTRIES: '20', ZIP_MAX_UNCOMPRESSED_MB: '2', MAX_DISK_GB: '0.001', STOP_GRACE_PERIOD: '1' });
    await stack.startAll();
    worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
    state = nodeStateOf(stack);
  });

  afterAll(async () => {
    worker?.close();
    await state?.close();
    await stack?.stopAll();
  });

  const execute = (p: Partial<ExecuteTaskRequest>) => unary(worker, worker.executeTask, executeRequest(p));
  const runPy = () => makeZip([{ name: 'run.py', content: 'print("hi")' }]);

  it.each<[string, () => Promise<Partial<ExecuteTaskRequest>>, RegExp]>([
    ['bytes that are not a zip', async () => ({ task_zip: Buffer.from('definitely not a zip archive, only some text') }), /task_zip is not a valid zip file/],
    ['an empty zip field', async () => ({ task_zip: Buffer.alloc(0) }), /task_zip is empty/],
    ['a zip with only a folder', async () => ({ task_zip: await makeZip([{ name: 'x/', dir: true }]) }), /the zip holds no files/],
    ['a ../ path', async () => ({ task_zip: await makeZipWithRawName('xx/evil.py', '../evil.py') }), /unsafe path: invalid relative path: \.\.\/evil\.py/],
    ['an absolute path', async () => ({ task_zip: await makeZipWithRawName('xetc/cron.d', '/etc/cron.d') }), /unsafe path: absolute path/],
    ['a symlink entry', async () => ({ task_zip: await makeZip([{ name: 'run.py', content: '' }, { name: 'l', content: '/', mode: 0o120777 }]) }), /"l" is a symbolic link/],
    ['too many entries', async () => ({ task_zip: await makeZip(Array.from({ length: 25 }, (_, i) => ({ name: `f${i}.py` }))) }), /25 entries; at most 20/],
    ['too many uncompressed bytes', async () => ({ task_zip: await makeZip([{ name: 'run.py', content: Buffer.alloc(3 << 20) }]) }), /unpacks to more than 2097152 bytes/],
    ['more disk than MAX_DISK_GB', async () => ({ task_zip: await makeZip([{ name: 'run.py', content: Buffer.alloc(1536 * 1024) }]) }), /needs 0\.00 GB of disk; this node gives tasks at most 0\.001 GB \(MAX_DISK_GB\)/],
    ['no entry point', async () => ({ task_zip: await makeZip([{ name: 'data.csv', content: '1,2' }]) }), /no entry point/],
    ['an invalid task id', async () => ({ task_id: 'bad id/..', task_zip: await runPy() }), /task_id may only contain letters, digits/],
    ['a task id of 65 characters', async () => ({ task_id: 'a'.repeat(65), task_zip: await runPy() }), /65 characters long; at most 64/],
    ['an empty task id', async () => ({ task_id: '', task_zip: await runPy() }), /task_id is empty/],
    ['more memory than the node has', async () => ({ memory_gb: 100000, task_zip: await runPy() }), /asks 100000 GB of memory; this node registered/],
    ['a cpu score above the node', async () => ({ cpu_usage: 1e9, task_zip: await runPy() }), /asks a cpu score of 1000000000/],
    ['a GPU on a node without one', async () => ({ gpu_usage: 5, task_zip: await runPy() }), /asks for a GPU; this node has none/],
    ['a NaN cpu request', async () => ({ cpu_usage: NaN, task_zip: await runPy() }), /cpu_usage must be a finite number/],
    ['negative memory', async () => ({ memory_gb: -1, task_zip: await runPy() }), /memory_gb must be a finite number of at least 0, got -1/],
  ])('refuses %s, saying why', async (_name, make, message) => {
    const res = await execute(await make());
    expect(res.success).toBe(false);
    expect(res.message).toMatch(message);
  });

  it('stored, held and queued nothing for the refused tasks', async () => {
    expect((await state.ledger.totals()).tasks).toBe(0);
    const tasks = queueOf(stack, QueueName.Tasks);
    expect(Object.values(await tasks.getJobCounts()).every((n) => n === 0)).toBe(true);
    await tasks.close();
    const incoming = await fs.readdir(path.join(stack.env.WORK_DIR, 'incoming')).catch(() => []);
    expect(incoming).toEqual([]);
  });

  it('admits exactly one of many concurrent calls for one task id, and refuses it while in flight', async () => {
    const zip = await makeZip([{ name: 'main.py', content: 'import time\ntime.sleep(120)' }]);
    const replies = await Promise.all(Array.from({ length: 6 }, () => execute({ task_id: 'dup-1', task_zip: zip })));
    expect(replies.filter((r) => r.success)).toHaveLength(1);
    for (const r of replies.filter((x) => !x.success)) expect(r.message).toBe('task dup-1 is already in flight on this node');
    expect((await execute({ task_id: 'dup-1', task_zip: zip })).message).toBe('task dup-1 is already in flight on this node');
  });

  it('says no when the node is full, and stops what it runs on StopTaskExecution', async () => {
    const zip = await makeZip([{ name: 'main.py', content: 'import time\ntime.sleep(120)' }]);
    expect((await execute({ task_id: 'dup-2', task_zip: zip })).success).toBe(true);
    const full = await execute({ task_id: 'dup-3', task_zip: zip });
    expect(full).toEqual({ success: false, message: 'node busy: 2 of 2 task slots in use' });
    // A full node says so before it reads the zip (a busy node hears ExecuteTask often);
    // the same bytes get the content's answer once it has room (the table above).
    expect(await execute({ task_id: 'dup-4', task_zip: Buffer.from('definitely not a zip archive') })).toEqual({
      success: false,
      message: 'node busy: 2 of 2 task slots in use',
    });
    await waitFor('both tasks to run', async () => (await state.running.count()) === 2);
    for (const id of ['dup-1', 'dup-2']) {
      const res = await unary(worker, worker.stopTaskExecution, { task_id: id });
      expect(res).toEqual({ success: true, message: `stopping task ${id}; its result follows` });
    }
    await waitFor('both containers to stop', async () => (await state.running.count()) === 0, 20_000);
    expect(await unary(worker, worker.stopTaskExecution, { task_id: 'never-seen' })).toEqual({
      success: false,
      message: 'task never-seen is not running on this node',
    });
  });

  it('reads a message of 1000 MiB (under the default 1 GiB cap) and answers on its content', async () => {
    const big = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(1100 << 20));
    try {
      const res = await unary(big, big.executeTask, executeRequest({ task_zip: Buffer.alloc(1000 << 20) }), undefined, 120_000);
      expect(res).toMatchObject({ success: false, message: expect.stringMatching(/task_zip is not a valid zip file/) });
    } finally {
      big.close();
    }
  });

  it('answers UNIMPLEMENTED for the pool-side methods', async () => {
    await expect(unary(worker, worker.taskUsage, { task_id: '1', cpu_usage: 0, memory_usage: 0, gpu_usage: 0, gpu_memory_usage: 0, token: '' })).rejects.toMatchObject({
      code: status.UNIMPLEMENTED,
    });
  });
});

/**
 * The deployed pool records an accepted task ~200 ms after replying, and overwrites a
 * result that arrives sooner. devpool emulates it; here its window is widened to
 * 1.5 s so the race is certain, and the gateway's upload guard decides the outcome.
 */
describe('the result upload guard', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('race', { DEVPOOL_RECORD_DELAY_MS: '1500' });
    await stack.start('devpool');
    await stack.start('monitor');
    await stack.start('executor');
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  async function runQuickTask(taskId: string) {
    const zip = await makeZip([{ name: 'run.sh', content: 'echo quick' }]);
    const up = await uploadTask(pool, taskId, zip);
    expect(up.success).toBe(true);
    const status = async () => await taskInfo(pool, taskId);
    await waitFor(`${taskId} to end`, async () => {
      const t = await status();
      return t && ['COMPLETED', 'FAILED'].includes(t.status);
    });
    // Read the outcome only once the pool's recording window (1.5 s) has surely passed.
    await new Promise((r) => setTimeout(r, 2500));
    return (await status())!;
  }

  it('without a guard, a fast result is lost to the race', async () => {
    const gw = await stack.start('gateway', { RESULT_UPLOAD_GUARD: '0' });
    try {
      const t = await runQuickTask('race-off');
      expect(t.status).toBe('FAILED');
      expect(t.message).toMatch(/overwritten/);
    } finally {
      await stack.stop(gw);
    }
  });

  it('with a guard longer than the window, the result counts', async () => {
    await stack.start('gateway', { RESULT_UPLOAD_GUARD: '2.5' });
    const t = await runQuickTask('race-on');
    expect(t.status).toBe('COMPLETED');
  });
});
