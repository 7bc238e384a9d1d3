import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as os from 'node:os';
import { WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { OwnerState } from '@hivemind/shared/owner/owner-state';
import { NodeStateConnection } from '@hivemind/shared/state/node-state';
import { executeRequest, ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { makeZip } from '../support/zips';
import { nodeStateOf, waitForReportedStatus } from '../support/node-state';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';

/** The owner's own work: one busy loop per core, outside any task. */
function startHog(): ChildProcess[] {
  return Array.from({ length: os.cpus().length }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}
function stopHog(hog: ChildProcess[]): void {
  for (const p of hog) if (p.exitCode === null) p.kill('SIGKILL');
}

/**
 * Busy owner with a real CPU hog on the host: the node stops accepting (status
 * `Busy (owner)`, ExecuteTask refused with the reason) and, with
 * OWNER_BUSY_PAUSE_TASKS, a running task is paused, resumed once the owner is idle,
 * and its paused time does not count toward TASK_TIMEOUT.
 */
describe('owner first: a busy owner', () => {
  let stack: Stack;
  let pool: PoolClient;
  let worker: WorkerNodeServiceClient;
  let state: NodeStateConnection;
  let hog: ChildProcess[] = [];

  beforeAll(async () => {
    stack = await Stack.create('owner', {
      OWNER_BUSY_CPU_PERCENT: '85',
      OWNER_BUSY_AFTER: '2',
      OWNER_IDLE_AFTER: '3',
      OWNER_BUSY_PAUSE_TASKS: 'true',
      TASK_TIMEOUT: '34',
      STOP_GRACE_PERIOD: '1',
    });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
    worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
    state = nodeStateOf(stack);
  });

  afterAll(async () => {
    stopHog(hog);
    worker?.close();
    pool?.close();
    await state?.close();
    await stack?.stopAll();
  });

  const ownerState = (): Promise<OwnerState | null> => state.owner.read();
  // Other work on a shared machine can hold the load up for a while: generous waits.
  const idle = () => waitFor('the owner to be idle', async () => {
    const s = await ownerState();
    return s && !s.busy ? s : null;
  }, 120_000);
  const busy = () => waitFor('the owner to be busy', async () => {
    const s = await ownerState();
    return s?.busy ? s : null;
  }, 120_000);

  afterEach(() => stopHog(hog));

  it('stops accepting while a CPU hog outside any task runs, and accepts again once it ends', async () => {
    await idle();
    hog = startHog();
    const state = await busy();
    expect(state.ownerCpuPercent).toBeGreaterThan(85);
    expect(state.since).toEqual(expect.any(Number));
    expect(state.reason).toMatch(/owner's own CPU use \(\d+ %\) stayed above 85 % for \d+ s/);
    expect(state.scheduleOpen).toBe(true);
    const zip = await makeZip([{ name: 'run.py', content: 'print("hi")' }]);
    const refused = await unary(worker, worker.executeTask, executeRequest({ task_id: 'owner-refused', task_zip: zip }));
    expect(refused.success).toBe(false);
    expect(refused.message).toMatch(/^the machine's owner is using it \(.+\); the node takes no new tasks until the owner has been idle for 3 s$/);
    // The pool was told: the node is not Idle, so it gets no work.
    await waitForReportedStatus(stack, 'Busy (owner)');

    stopHog(hog);
    await idle();
    const accepted = await unary(worker, worker.executeTask, executeRequest({ task_id: 'owner-ok', task_zip: zip }));
    expect(accepted).toEqual({ success: true, message: expect.stringMatching(/^task owner-ok accepted/) });
  }, 400_000);

  it('pauses a running task while the owner is busy and leaves the paused time out of its timeout', async () => {
    await idle();
    // 30 s of sleeping in steps (room for the owner watch to see the hog, however loaded the
    // machine); TASK_TIMEOUT is 34 s, and the task will be paused longer than 4 s.
    const code = ['import time', 'for i in range(60):', '    print("step", i, flush=True)', '    time.sleep(0.5)', 'print("done")'].join('\n');
    expect((await uploadTask(pool, 'owner-paused', await makeZip([{ name: 'run.py', content: code }]))).success).toBe(true);
    await waitForStatus(pool, 'owner-paused', ['RUNNING']);
    const started = Date.now();
    hog = startHog();
    const state = await waitFor('the task to be paused', async () => {
      const s = await ownerState();
      return s?.frozenTasks.includes('owner-paused') ? s : null;
    }, 120_000);
    expect(state.busy).toBe(true);
    const inspect = JSON.parse(execFileSync('docker', ['inspect', 'hivemind-task-owner-paused']).toString())[0];
    expect(inspect.State.Paused).toBe(true);
    // Keep the owner busy well past the task's timeout.
    await new Promise((r) => setTimeout(r, 8000));
    stopHog(hog);
    const done = await waitForStatus(pool, 'owner-paused', ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('COMPLETED');
    // It outlived its timeout, counting the paused time.
    expect(Date.now() - started).toBeGreaterThan(34_000);
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: 'owner-paused', token }));
    const files = await unzip(Buffer.from(res.result_zip));
    const exec = files.get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Status: Success');
    const paused = Number(/Paused for the owner: ([\d.]+) s \(not counted toward the timeout\)/.exec(exec)?.[1]);
    expect(paused).toBeGreaterThan(5);
    expect(files.get('task_logs.txt')!.data.toString()).toContain('done');
    // The monitor rewrites the owner state every second: the finished task leaves it within one.
    await waitFor('the owner state to list no frozen task', async () => (await ownerState())?.frozenTasks.length === 0, 10_000);
  }, 400_000);
});
