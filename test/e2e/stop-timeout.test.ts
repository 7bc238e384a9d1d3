import Docker from 'dockerode';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip } from '../support/zips';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

/** StopTaskExecution and TASK_TIMEOUT through the real services and Docker. */
describe('stop and timeout', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('stoptime', { TASK_TIMEOUT: '3', STOP_GRACE_PERIOD: '1', LOG_LEVEL: 'info' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  const result = (taskId: string) =>
    waitFor(`the result of ${taskId}`, async () => {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
      return res.success ? unzip(Buffer.from(res.result_zip)) : null;
    });

  it('StopTaskExecution ends a task that ignores SIGTERM within 2 s (SIGTERM, grace, SIGKILL); the result is Stopped with task_stopped.txt', async () => {
    // Ignores SIGTERM, so only the SIGKILL after STOP_GRACE_PERIOD (1 s) ends it.
    const stubborn = 'trap "echo got TERM" TERM\necho started\nwhile true; do sleep 0.2; done\n';
    expect((await uploadTask(pool, 'stubborn', await makeZip([{ name: 'run.sh', content: stubborn }]))).success).toBe(true);
    const container = docker.getContainer('hivemind-task-stubborn');
    await waitFor('stubborn to run', async () => (await container.inspect().catch(() => null))?.State.Running);
    await waitFor('stubborn output', async () => {
      const log = await pool.call(pool.master, pool.master.getTasklog, (token) => ({ task_id: 'stubborn', token }));
      return log.log.includes('started');
    });
    const t0 = Date.now();
    const stop = await pool.call(pool.master, pool.master.stopTask, (token) => ({ task_id: 'stubborn', token }));
    expect(stop.success).toBe(true);
    await waitFor('the container to stop', async () => !(await container.inspect().catch(() => null))?.State.Running, 10_000, 20);
    const stoppedMs = Date.now() - t0;
    expect(stoppedMs).toBeLessThan(2000);
    const files = await result('stubborn');
    expect((await taskInfo(pool, 'stubborn'))!.status).toBe('STOPPED');
    const exec = files.get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Status: Stopped');
    expect(exec).toContain('Reason: stopped at the request of the task owner');
    expect(files.get('task_stopped.txt')!.data.toString()).toContain('Task stubborn was stopped');
    expect(files.get('task_logs.txt')!.data.toString()).toContain('got TERM');
  });

  it('a task past TASK_TIMEOUT fails with "timed out after N s"', async () => {
    const slow = 'import time\nprint("sleeping", flush=True)\ntime.sleep(60)\nprint("woke")\n';
    const t0 = Date.now();
    expect((await uploadTask(pool, 'slow', await makeZip([{ name: 'main.py', content: slow }]))).success).toBe(true);
    await waitForStatus(pool, 'slow', ['COMPLETED', 'FAILED']);
    const files = await result('slow');
    const exec = files.get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Status: Failed');
    expect(exec).toContain('Reason: timed out after 3 s');
    const logs = files.get('task_logs.txt')!.data.toString();
    expect(logs).toContain('sleeping');
    expect(logs).not.toContain('woke');
    expect(logs).toContain('[hivemind] timed out after 3 s; stopping');
    expect(Date.now() - t0).toBeGreaterThan(3000);
  });
});
