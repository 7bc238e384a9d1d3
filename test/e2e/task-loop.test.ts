import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { zipFolder } from '../../apps/devpool/src/submit-client';
import { makeTempDir } from '../support/cleanup';
import { ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { makeZip } from '../support/zips';
import { ROOT, Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';

/**
 * The whole loop with every part real and separate: devpool, gateway, executor and
 * monitor as processes, Redis, Docker and gRPC between them.
 */
describe('a task from the Node Pool to a result zip', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('loop');
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  async function upload(taskId: string, zip: Buffer): Promise<void> {
    expect(await uploadTask(pool, taskId, zip)).toEqual({ success: true, message: `task ${taskId} uploaded` });
  }

  const info = (taskId: string) => taskInfo(pool, taskId);

  const waitStatus = (taskId: string, statuses: string[]) =>
    waitForStatus(pool, taskId, statuses).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.logs()}`);
    });

  async function result(taskId: string) {
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
    expect(res.success).toBe(true);
    return unzip(Buffer.from(res.result_zip));
  }

  it('runs the sample task in a container; its output reaches GetTasklog and its files the result zip', async () => {
    await upload('hello-1', await zipFolder(path.join(ROOT, 'examples/hello')));
    const done = await waitStatus('hello-1', ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.worker_ip).toBe('localhost');

    const log = await pool.call(pool.master, pool.master.getTasklog, (token) => ({ task_id: 'hello-1', token }));
    expect(log.success).toBe(true);
    expect(log.log).toContain('hello from task hello-1');
    expect(log.log).toContain('step 5: running sum of squares = 55');

    const files = await result('hello-1');
    expect([...files.keys()].sort()).toEqual(['execution_log.txt', 'result/', 'result/answer.json', 'run.py', 'task_logs.txt']);
    expect(JSON.parse(files.get('result/answer.json')!.data.toString())).toEqual({ task_id: 'hello-1', sum_of_squares_1_to_5: 55 });
    const exec = files.get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Task ID: hello-1');
    expect(exec).toContain('Status: Success');
    expect(exec).toContain('Node: alice');
    expect(exec).toContain('Runtime: docker');
    expect(files.get('task_logs.txt')!.data.toString()).toContain('step 3: running sum of squares = 14');
  });

  it('runs inside the sandbox: non-root, no network, read-only root, TASK_ID and RESULT_DIR set', async () => {
    const probe = [
      'import os, socket',
      'print("uid", os.getuid())',
      'print("task", os.environ["TASK_ID"], os.environ["RESULT_DIR"])',
      'try:',
      '    open("/etc/hivemind-probe", "w")',
      '    print("root writable")',
      'except OSError as e:',
      '    print("root read-only", e.errno)',
      'try:',
      '    socket.create_connection(("1.1.1.1", 53), timeout=2)',
      '    print("network open")',
      'except OSError as e:',
      '    print("network closed")',
      'print("interfaces", sorted(n for _, n in socket.if_nameindex()))',
    ].join('\n');
    await upload('probe-1', await makeZip([{ name: 'main.py', content: probe }]));
    expect((await waitStatus('probe-1', ['COMPLETED', 'FAILED'])).status).toBe('COMPLETED');
    const logs = (await result('probe-1')).get('task_logs.txt')!.data.toString();
    expect(logs).toContain('uid 10001');
    expect(logs).toContain('task probe-1 /workspace/result');
    expect(logs).toMatch(/root read-only (30|13)/);
    expect(logs).toContain('network closed');
    expect(logs).toContain("interfaces ['lo']");
  });

  it('reports a failing task as COMPLETED at the pool, with a result that says it failed and why', async () => {
    await upload('fail-1', await makeZip([{ name: 'run.sh', content: 'echo about to fail\nexit 3\n' }]));
    expect((await waitStatus('fail-1', ['COMPLETED', 'FAILED'])).status).toBe('COMPLETED');
    const files = await result('fail-1');
    const exec = files.get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Status: Failed');
    expect(exec).toContain('Reason: exited with code 3');
    expect(files.get('task_logs.txt')!.data.toString()).toContain('about to fail');
  });

  it('relays per-task usage while a task runs', async () => {
    const burn = 'import time\nt=time.time()\nx=[0]*2000000\nwhile time.time()-t<6: pass\nprint("done")';
    await upload('burn-1', await makeZip([{ name: 'main.py', content: burn }]));
    await waitStatus('burn-1', ['RUNNING']);
    const seen = await waitFor('usage of burn-1', async () => {
      const t = await info('burn-1');
      return t && t.cpu_usage > 10 && t.memory_usage > 0 ? t : null;
    }, 20_000);
    expect(seen.cpu_usage).toBeGreaterThan(10);
    await waitStatus('burn-1', ['COMPLETED']);
  });

  it('stops a running task on StopTask; the result says Stopped and holds task_stopped.txt', async () => {
    const slow = 'import time\nprint("started", flush=True)\nfor i in range(600):\n    time.sleep(0.1)\n';
    await upload('stop-1', await makeZip([{ name: 'main.py', content: slow }]));
    await waitFor('stop-1 output', async () => {
      const log = await pool.call(pool.master, pool.master.getTasklog, (token) => ({ task_id: 'stop-1', token }));
      return log.log.includes('started');
    });
    const t0 = Date.now();
    const stop = await pool.call(pool.master, pool.master.stopTask, (token) => ({ task_id: 'stop-1', token }));
    expect(stop.success).toBe(true);
    expect(stop.message).toContain('stopping task stop-1');
    const files = await waitFor('the result of stop-1', async () => {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: 'stop-1', token }));
      return res.success ? unzip(Buffer.from(res.result_zip)) : null;
    });
    // Stop grace (1 s by default, python exits at SIGTERM at once) plus the upload guard.
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect((await info('stop-1'))!.status).toBe('STOPPED');
    expect(files.get('execution_log.txt')!.data.toString()).toContain('Status: Stopped');
    expect(files.get('task_stopped.txt')!.data.toString()).toContain('Task stop-1 was stopped');
  });

  it('submit exits 0 for a task that succeeds and 1 for one that fails, unpacking the result', async () => {
    const out = await makeTempDir('hm-submit-');
    const failing = path.join(out, 'failing');
    await fs.mkdir(failing);
    await fs.writeFile(path.join(failing, 'run.py'), 'import sys\nprint("nope")\nsys.exit(2)\n');
    const submit = (folder: string) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, [path.join(ROOT, 'dist/apps/devpool/src/submit.js'), folder, '--pool', stack.devpoolAddress, '--out', out, '--timeout', '120']);
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (c) => (stdout += c));
        p.stderr.on('data', (c) => (stderr += c));
        p.on('exit', (code) => resolve({ code, stdout, stderr }));
      });
    const [ok, bad] = await Promise.all([submit(path.join(ROOT, 'examples/hello')), submit(failing)]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('step 5: running sum of squares = 55');
    const okDir = /unpacked in (.*)$/m.exec(ok.stderr)![1];
    expect(JSON.parse(await fs.readFile(path.join(okDir, 'result/answer.json'), 'utf8')).sum_of_squares_1_to_5).toBe(55);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/result of failing-[0-9a-f]+: Failed/);
  });
});
