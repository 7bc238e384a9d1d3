import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ownerClient, taskInfo, uploadTask } from '../support/pool';
import { makeZip } from '../support/zips';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';

/** Without a Docker daemon, and only when allowed, tasks run as plain processes. */
describe('the process runtime, end to end', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('proc', { DOCKER_SOCKET: '/nonexistent/docker.sock', ALLOW_PROCESS_RUNTIME: 'true', REGISTER_INTERVAL: '1' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  it('registers docker_status unavailable and runs the task as a process', async () => {
    const devpool = stack.services.find((s) => s.name === 'devpool')!;
    await waitFor('registration with docker unavailable', async () => /"docker":"unavailable"/.test(devpool.output()), 20_000);
    const zip = await makeZip([{ name: 'main.py', content: 'import os\nprint("pid", os.getpid(), "task", os.environ["TASK_ID"])' }]);
    const up = await uploadTask(pool, 'proc-1', zip);
    expect(up.success).toBe(true);
    await waitFor('proc-1 to complete', async () => {
      const t = await taskInfo(pool, 'proc-1');
      return t?.status === 'COMPLETED';
    });
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: 'proc-1', token }));
    const files = await unzip(Buffer.from(res.result_zip));
    expect(files.get('execution_log.txt')!.data.toString()).toMatch(/Status: Success[\s\S]*Runtime: process/);
    expect(files.get('task_logs.txt')!.data.toString()).toContain('task proc-1');
  });
});
