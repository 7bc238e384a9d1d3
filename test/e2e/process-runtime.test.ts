import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { makeZip } from '../support/zips';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { escapingTask, processesWithMarker } from '../support/escaping-task';

/** Pids of live processes whose command line holds `marker`. */
const markers: string[] = [];
const marker = (what: string) => {
  const m = `HM_E2E_MARK_${what}_${process.pid}`;
  markers.push(m);
  return m;
};

afterAll(async () => {
  for (const m of markers) for (const pid of await processesWithMarker(m)) process.kill(pid, 'SIGKILL');
});

/** Stops the stack and removes its folder, with any workspace volume still mounted under it. */
async function cleanUp(stack: Stack | undefined): Promise<void> {
  if (!stack) return;
  await stack.stopAll();
  const mounts = (await fs.readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const m of mounts.filter((m) => m.startsWith(`${stack.dir}/`)).reverse()) execFileSync('umount', ['-l', m]);
  await fs.rm(stack.dir, { recursive: true, force: true });
}

/** Without a Docker daemon, and only when allowed, tasks run as plain processes. */
describe('the process runtime, end to end', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('proc', { DOCKER_SOCKET: '/nonexistent/docker.sock', ALLOW_PROCESS_RUNTIME: 'true', REGISTER_INTERVAL: '1', STOP_GRACE_PERIOD: '1' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await cleanUp(stack);
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

  it('ends a task with its top process although a setsid() child holds its output, and nothing of it survives', async () => {
    const m = marker('exit');
    expect((await uploadTask(pool, 'proc-escape', await makeZip([{ name: 'main.py', content: escapingTask(m, 'time.sleep(1)') }]))).success).toBe(true);
    expect((await waitForStatus(pool, 'proc-escape', ['COMPLETED', 'FAILED', 'STOPPED'])).status).toBe('COMPLETED');
    await waitFor('no process of the task', async () => (await processesWithMarker(m)).length === 0, 10_000);
  });

  it('StopTaskExecution ends a task whose setsid() child ignores SIGTERM, and nothing of it survives', async () => {
    const m = marker('stop');
    expect((await uploadTask(pool, 'proc-escape-stop', await makeZip([{ name: 'main.py', content: escapingTask(m, 'time.sleep(300)') }]))).success).toBe(true);
    await waitFor('the escaped child to run', async () => (await processesWithMarker(m)).length === 1, 90_000);
    // The pool passes a stop on to the node only once it knows the task runs.
    await waitForStatus(pool, 'proc-escape-stop', ['RUNNING']);
    const stop = await pool.call(pool.master, pool.master.stopTask, (token) => ({ task_id: 'proc-escape-stop', token }));
    expect(stop.success).toBe(true);
    expect((await waitForStatus(pool, 'proc-escape-stop', ['COMPLETED', 'FAILED', 'STOPPED'])).status).toBe('STOPPED');
    // The pool says STOPPED at once; the executor has stopped the task when its result is there.
    const files = await waitFor('the result of proc-escape-stop', async () => {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: 'proc-escape-stop', token }));
      return res.success ? unzip(Buffer.from(res.result_zip)) : null;
    }, 120_000);
    expect(files.get('execution_log.txt')!.data.toString()).toContain('Status: Stopped');
    await waitFor('no process of the task', async () => (await processesWithMarker(m)).length === 0, 10_000);
  });
});

describe('the process runtime without a sandbox', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('proc-none', { DOCKER_SOCKET: '/nonexistent/docker.sock', ALLOW_PROCESS_RUNTIME: 'true', PROCESS_SANDBOX: 'none', REGISTER_INTERVAL: '1' });
    await stack.start('devpool');
    await stack.start('monitor');
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await cleanUp(stack);
  });

  it('is refused (the executor is not ready, and says why) unless PROCESS_SANDBOX_FORCE_NONE=true', async () => {
    const refused = await stack.start('executor', {}, /executor not ready/);
    const ready = await waitFor('the executor\'s readiness answer', async () => {
      const res = await fetch(`http://127.0.0.1:${refused.httpPort}/health/ready`).catch(() => null);
      return res ? { status: res.status, body: await res.text() } : null;
    });
    expect(ready.status).toBe(503);
    expect(ready.body).toContain('PROCESS_SANDBOX=none is refused');
    expect(ready.body).toContain('PROCESS_SANDBOX_FORCE_NONE=true');
    await stack.stop(refused);
  });

  it('when forced, still ends a task with its top process although a setsid() child holds its output, and kills the child', async () => {
    await stack.start('executor', { PROCESS_SANDBOX_FORCE_NONE: 'true' });
    await stack.start('gateway');
    const m = marker('none');
    expect((await uploadTask(pool, 'none-escape', await makeZip([{ name: 'main.py', content: escapingTask(m, 'time.sleep(2)') }]))).success).toBe(true);
    expect((await waitForStatus(pool, 'none-escape', ['COMPLETED', 'FAILED', 'STOPPED'])).status).toBe('COMPLETED');
    await waitFor('no process of the task', async () => (await processesWithMarker(m)).length === 0, 10_000);
  });
});
