import { ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { apiStatus, deliveries, uploadsSucceeded } from '../support/node-state';
import { freePort, Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip } from '../support/zips';

const sleepTask = (secs: number) => makeZip([{ name: 'run.sh', content: `echo start >> starts.txt\nsleep ${secs}\necho done\n` }]);

describe('the gateway SIGKILLed while a task runs', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('gwkill', { JOB_LOCK_DURATION: '2' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  it('uploads the result once after the gateway is back, and heartbeats resume', async () => {
    expect((await uploadTask(pool, 'gw-kill', await sleepTask(3))).success).toBe(true);
    await waitForStatus(pool, 'gw-kill', ['RUNNING']);
    const gateway = stack.services.find((s) => s.name === 'gateway')!;
    await stack.stop(gateway, 'SIGKILL');
    // The task ends and its result waits in Redis while no gateway runs.
    await new Promise((r) => setTimeout(r, 5000));
    expect((await taskInfo(pool, 'gw-kill'))?.status).toBe('RUNNING');
    expect(await deliveries(stack, 'gw-kill')).toBe(0);
    const again = await stack.start('gateway');
    expect((await waitForStatus(pool, 'gw-kill', ['COMPLETED', 'FAILED'], 60_000)).status).toBe('COMPLETED');
    // Delivered once: one entry in the node's task history (one per result the pool took).
    await waitFor('the delivery to be recorded', async () => (await deliveries(stack, 'gw-kill')) > 0, 10_000);
    expect(await deliveries(stack, 'gw-kill')).toBe(1);
    // The new gateway's heartbeats reach the pool, saying Idle.
    await waitFor('a heartbeat from the new gateway', async () => {
      const s = await apiStatus(stack, again);
      return s.status === 'Idle' && s.pool.lastHeartbeatOk !== null;
    }, 20_000);
  });
});

describe('every service SIGTERMed while a task runs', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('sigterm', { DRAIN_TIMEOUT: '2', STOP_GRACE_PERIOD: '1' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  it('drains and exits cleanly; after a restart the Stopped result is uploaded once', async () => {
    expect((await uploadTask(pool, 'term-all', await sleepTask(60))).success).toBe(true);
    await waitForStatus(pool, 'term-all', ['RUNNING']);
    await new Promise((r) => setTimeout(r, 1000));
    const workers = stack.services.filter((s) => s.name !== 'devpool');
    const t0 = Date.now();
    const codes = await Promise.all(workers.map((s) => stack.stop(s, 'SIGTERM')));
    expect(codes).toEqual(workers.map(() => 0));
    expect(Date.now() - t0).toBeLessThan(15_000);
    for (const s of workers) stack.services.splice(stack.services.indexOf(s), 1);
    await stack.start('monitor');
    await stack.start('executor');
    await stack.start('gateway');
    expect((await waitForStatus(pool, 'term-all', ['COMPLETED', 'FAILED'], 60_000)).status).toBe('COMPLETED');
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: 'term-all', token }));
    const exec = (await unzip(Buffer.from(res.result_zip))).get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Status: Stopped');
    expect(exec).toContain('stopped because the node is shutting down');
    await waitFor('the delivery to be recorded', async () => (await deliveries(stack, 'term-all')) > 0, 10_000);
    expect(await deliveries(stack, 'term-all')).toBe(1);
  });
});

/** A Redis of the test's own with AOF, as compose runs it, restarted mid-run. */
describe('Redis restarted (AOF) while tasks run', () => {
  let stack: Stack;
  let pool: PoolClient;
  let redis: ChildProcess;
  let port: number;
  let dir: string;

  const startRedis = async () => {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
    await waitFor('redis to listen', () => new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    }), 10_000, 100);
  };

  beforeAll(async () => {
    port = await freePort();
    stack = await Stack.create('redis', { JOB_LOCK_DURATION: '2', MAX_CONCURRENT_TASKS: '3' });
    dir = path.join(stack.dir, 'redis');
    await fs.mkdir(dir);
    await startRedis();
    stack.env.REDIS_URL = `redis://127.0.0.1:${port}`;
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
    redis?.kill('SIGKILL');
  });

  it('loses no task and doubles none', async () => {
    const ids = ['aof-1', 'aof-2', 'aof-3'];
    for (const id of ids) expect((await uploadTask(pool, id, await sleepTask(3))).success).toBe(true);
    await waitFor('the tasks to run', async () => {
      const s = await Promise.all(ids.map((id) => waitForStatus(pool, id, ['RUNNING', 'COMPLETED'], 30_000)));
      return s.length === 3;
    });
    const exited = new Promise((r) => redis.once('exit', r));
    redis.kill('SIGTERM');
    await exited;
    await new Promise((r) => setTimeout(r, 2000));
    await startRedis();
    for (const id of ids) expect((await waitForStatus(pool, id, ['COMPLETED', 'FAILED'], 90_000)).status).toBe('COMPLETED');
    // Each delivered once: one history entry each, and three successful uploads in all (the
    // gateway ran throughout, so its /metrics count every upload, also one whose history
    // entry the Redis restart cost).
    await waitFor('the deliveries to be recorded', async () => (await Promise.all(ids.map((id) => deliveries(stack, id)))).every((n) => n > 0), 10_000);
    expect(await Promise.all(ids.map((id) => deliveries(stack, id)))).toEqual([1, 1, 1]);
    expect(await uploadsSucceeded(stack.services.find((s) => s.name === 'gateway')!)).toBe(3);
    for (const s of stack.services) expect([s.name, s.proc.exitCode]).toEqual([s.name, null]);
  });
});
