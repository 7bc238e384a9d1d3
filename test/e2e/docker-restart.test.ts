import { ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { PrivateDockerd } from '../support/private-dockerd';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip } from '../support/zips';

/**
 * The Docker daemon restarts while tasks run. The executor uses a daemon of this
 * test's own, so restarting it disturbs no other test.
 */
describe('a Docker daemon restart while a task runs', () => {
  let dockerd: PrivateDockerd;
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    dockerd = await PrivateDockerd.create();
    await dockerd.start();
    await dockerd.loadImage('hivemind/task-runtime:latest');
    stack = await Stack.create('dockerd', { DOCKER_SOCKET: dockerd.socket, DOCKER_RESTART_WAIT: '60', RECONCILE_INTERVAL: '5' });
    await stack.start('devpool');
    await stack.start('executor');
    await stack.start('gateway');
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    // The stack first (its task containers live in this daemon), then the daemon with its mounts.
    await stack?.destroy();
    await dockerd?.destroy();
  });

  const containerOf = async (taskId: string) =>
    dockerd.docker.listContainers({ all: true, filters: { label: [`io.hivemind.task-id=${taskId}`] } });

  async function result(taskId: string) {
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
    return unzip(Buffer.from(res.result_zip));
  }

  it('fails a task whose container the restart killed, saying so, and leaves nothing running', async () => {
    expect((await uploadTask(pool, 'killed-by-restart', await makeZip([{ name: 'run.sh', content: 'echo started\nsleep 60\necho never\n' }]))).success).toBe(true);
    await waitFor('the task to run', async () => (await containerOf('killed-by-restart')).some((c) => c.State === 'running'));
    await dockerd.restart();
    const t = await waitForStatus(pool, 'killed-by-restart', ['COMPLETED', 'FAILED'], 90_000);
    expect(t.status).toBe('COMPLETED');
    const exec = (await result('killed-by-restart')).get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Status: Failed');
    expect(exec).toMatch(/Reason: the Docker daemon restarted while the task ran; its container ended with exit code 1[34][37]/);
    await waitFor('the container to be removed', async () => (await containerOf('killed-by-restart')).length === 0, 30_000);
  });

  it('follows a container that survived the restart (live-restore) to its end', async () => {
    await dockerd.restart({ liveRestore: true });
    const script = 'echo before\nsleep 8\necho after\necho kept > kept.txt\n';
    expect((await uploadTask(pool, 'survives-restart', await makeZip([{ name: 'run.sh', content: script }]))).success).toBe(true);
    await waitFor('the task to run', async () => (await containerOf('survives-restart')).some((c) => c.State === 'running'));
    await dockerd.restart({ liveRestore: true });
    const t = await waitForStatus(pool, 'survives-restart', ['COMPLETED', 'FAILED'], 90_000);
    expect(t.status).toBe('COMPLETED');
    const files = await result('survives-restart');
    expect(files.get('execution_log.txt')!.data.toString()).toContain('Status: Success');
    expect(files.get('kept.txt')!.data.toString()).toBe('kept\n');
    const log = files.get('task_logs.txt')!.data.toString();
    expect(log).toContain('before');
    expect(log).toContain('after');
  });
});
