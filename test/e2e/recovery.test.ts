import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Job } from 'bullmq';
import Docker from 'dockerode';
import IORedis from 'ioredis';
import { QueueName } from '@hivemind/shared/queue/queues';
import { RedisKeys } from '@hivemind/shared/state/redis-keys';
import { NEVER_OFFERED, ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { deliveries, nodeStateOf, queueOf } from '../support/node-state';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { RunningService, Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip } from '../support/zips';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const containerOf = async (taskId: string) =>
  docker.listContainers({ all: true, filters: { label: [`io.hivemind.task-id=${taskId}`] } });
/**
 * Crashes and shutdowns of the executor: a task it was running is adopted, not run
 * twice and not lost; SIGTERM drains; orphans are removed. Real processes, Docker and
 * devpool; a short job lock so a dead executor's job is handed out again quickly.
 */
describe('executor crashes and shutdown', () => {
  let stack: Stack;
  let pool: PoolClient;
  let executor: RunningService;

  beforeAll(async () => {
    stack = await Stack.create('recover', { JOB_LOCK_DURATION: '2', DRAIN_TIMEOUT: '2', RECONCILE_INTERVAL: '5', STOP_GRACE_PERIOD: '1' });
    await stack.start('devpool');
    executor = await stack.start('executor');
    await stack.start('gateway');
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  async function result(taskId: string) {
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
    return unzip(Buffer.from(res.result_zip));
  }

  // How many times the node delivered the task's result: its task history has one entry per result the pool took.
  const resultsReceived = (taskId: string) => deliveries(stack, taskId);

  // The task counts its starts in its workspace, so a second run would show.
  const counting = (seconds: number, exitCode = 0) =>
    makeZip([
      {
        name: 'run.sh',
        content: `echo start >> starts.txt\necho "running, starts: $(wc -l < starts.txt)"\nsleep ${seconds}\necho done\nexit ${exitCode}\n`,
      },
    ]);

  it('adopts a running task after the executor is SIGKILLed; it runs once and ends once', async () => {
    // It runs until the test lets it end (a file `go` in its workspace, at most a minute):
    // what it prints after that reaches the executor that adopted it, however long the adoption took.
    const waiting = await makeZip([
      { name: 'run.sh', content: 'echo start >> starts.txt\necho "running, starts: $(wc -l < starts.txt)"\nfor i in $(seq 600); do [ -e go ] && break; sleep 0.1; done\necho done\n' },
    ]);
    expect((await uploadTask(pool, 'crash-run', waiting)).success).toBe(true);
    await waitFor('crash-run to start', async () => (await containerOf('crash-run')).some((c) => c.State === 'running'));
    await stack.stop(executor, 'SIGKILL');
    executor = await stack.start('executor');
    const work = path.join(stack.dir, 'work');
    await waitFor('the new executor to adopt crash-run', async () => (await fs.readFile(path.join(work, 'logs', 'crash-run.log'), 'utf8').catch(() => '')).includes('resumed by this executor'), 60_000);
    await fs.writeFile(path.join(work, 'workspaces', 'crash-run', 'go'), '');
    const t = await waitForStatus(pool, 'crash-run', ['COMPLETED', 'FAILED'], 60_000);
    expect(t.status).toBe('COMPLETED');
    const files = await result('crash-run');
    expect(files.get('execution_log.txt')!.data.toString()).toContain('Status: Success');
    expect(files.get('starts.txt')!.data.toString()).toBe('start\n');
    expect(files.get('task_logs.txt')!.data.toString()).toContain('resumed by this executor');
    expect(files.get('task_logs.txt')!.data.toString()).toContain('done');
    await waitFor('the delivery to be recorded', async () => (await resultsReceived('crash-run')) > 0, 10_000);
    expect(await resultsReceived('crash-run')).toBe(1);
    expect(await containerOf('crash-run')).toEqual([]);
  });

  it('uses the exit status of a task that ended while no executor watched, without running it again', async () => {
    expect((await uploadTask(pool, 'crash-exit', await counting(1, 3))).success).toBe(true);
    await waitFor('crash-exit to start', async () => (await containerOf('crash-exit')).some((c) => c.State === 'running'));
    await stack.stop(executor, 'SIGKILL');
    await waitFor('the orphaned container to exit', async () => (await containerOf('crash-exit')).some((c) => c.State === 'exited'), 20_000);
    executor = await stack.start('executor');
    expect((await waitForStatus(pool, 'crash-exit', ['COMPLETED', 'FAILED'], 60_000)).status).toBe('COMPLETED');
    const files = await result('crash-exit');
    expect(files.get('execution_log.txt')!.data.toString()).toMatch(/Status: Failed\nReason: exited with code 3/);
    expect(files.get('starts.txt')!.data.toString()).toBe('start\n');
    await waitFor('the delivery to be recorded', async () => (await resultsReceived('crash-exit')) > 0, 10_000);
    expect(await resultsReceived('crash-exit')).toBe(1);
    expect(await containerOf('crash-exit')).toEqual([]);
  });

  it("runs a task afresh on its job's first start, though a container of that name is left from before", async () => {
    // Only a redelivered job can have a container of ours to take over. One left under the
    // task's name (here another instance's, which the reconciler leaves alone) is not the
    // task's: it is removed when the task's container is created.
    const taskId = `first-start-${stack.env.REDIS_PREFIX.slice(-8)}`;
    const left = await docker.createContainer({
      name: `hivemind-task-${taskId}`,
      Image: 'hivemind/task-runtime:latest',
      Cmd: ['sh', '-c', 'exit 3'],
      Labels: { 'io.hivemind.managed': 'true', 'io.hivemind.task-id': taskId, 'io.hivemind.instance': 'some-other-worker' },
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      await left.start();
      await waitFor('the left container to exit', async () => (await left.inspect()).State.Status === 'exited', 20_000);
      expect((await uploadTask(pool, taskId, await counting(0))).success).toBe(true);
      expect((await waitForStatus(pool, taskId, ['COMPLETED', 'FAILED'], 60_000)).status).toBe('COMPLETED');
      const files = await result(taskId);
      expect(files.get('execution_log.txt')!.data.toString()).toContain('Status: Success');
      expect(files.get('starts.txt')!.data.toString()).toBe('start\n');
      await waitFor('the container to be removed', async () => (await containerOf(taskId)).length === 0, 20_000);
    } finally {
      await left.remove({ force: true }).catch(() => undefined);
    }
  });

  it('fences off an executor frozen past its job lock: the one that took the task over delivers it, once', async () => {
    const state = nodeStateOf(stack);
    const frozen = executor;
    try {
      expect((await uploadTask(pool, 'frozen-run', await counting(10))).success).toBe(true);
      await waitFor('frozen-run to start', async () => (await containerOf('frozen-run')).some((c) => c.State === 'running'));
      frozen.proc.kill('SIGSTOP');
      executor = await stack.start('executor');
      const successor = `-${executor.proc.pid}`;
      await waitFor('the new executor to take frozen-run over', async () => (await state.running.get('frozen-run'))?.executorId.includes(successor), 30_000);
      // Wake the stale executor while the container still runs: both now watch it end.
      frozen.proc.kill('SIGCONT');
      const t = await waitForStatus(pool, 'frozen-run', ['COMPLETED', 'FAILED'], 60_000);
      expect(t.status).toBe('COMPLETED');
      // The stale executor is done with the task: its beat (Redis), sent after it woke, holds no task.
      const woke = Date.now();
      await waitFor('the stale executor to let the task go', async () => {
        const beat = (await state.executors.all()).find((b) => b.executorId.endsWith(`-${frozen.proc.pid}`));
        return beat && beat.seenAt > woke && beat.running === 0;
      }, 30_000);
      const files = await result('frozen-run');
      expect(files.get('execution_log.txt')!.data.toString()).toContain('Status: Success');
      expect(files.get('starts.txt')!.data.toString()).toBe('start\n');
      await waitFor('the delivery to be recorded', async () => (await resultsReceived('frozen-run')) > 0, 10_000);
      expect(await resultsReceived('frozen-run')).toBe(1);
      expect(frozen.proc.exitCode).toBeNull();
      await waitFor('the container to be removed', async () => (await containerOf('frozen-run')).length === 0, 20_000);
    } finally {
      frozen.proc.kill('SIGCONT');
      await stack.stop(frozen, 'SIGTERM');
      await state.close();
    }
  });

  it("removes containers of ours whose task the node does not hold, and leaves another instance's alone", async () => {
    const make = (taskId: string, instance: string) =>
      docker.createContainer({
        Image: 'hivemind/task-runtime:latest',
        Cmd: ['sleep', '300'],
        Labels: { 'io.hivemind.managed': 'true', 'io.hivemind.task-id': taskId, 'io.hivemind.instance': instance },
        HostConfig: { NetworkMode: 'none' },
      });
    const suffix = stack.env.REDIS_PREFIX.slice(-8);
    const orphan = await make(`nobody-holds-this-${suffix}`, stack.env.REDIS_PREFIX);
    const other = await make(`another-workers-task-${suffix}`, 'some-other-worker');
    await orphan.start();
    await other.start();
    try {
      await waitFor('the reconciler to remove the orphan', async () => (await containerOf(`nobody-holds-this-${suffix}`)).length === 0, 20_000);
      expect(await containerOf(`another-workers-task-${suffix}`)).toHaveLength(1);
    } finally {
      await other.remove({ force: true });
    }
  });

  it('gives a held task whose job vanished a failure result, or frees it if the pool never heard of it', async () => {
    const state = nodeStateOf(stack);
    // Raw: reservations made five minutes ago, which ResourceLedger.reserve (stamped with Redis's clock now) cannot write.
    const redis = new IORedis(stack.env.REDIS_URL);
    const ledgerKey = new RedisKeys(stack.env.REDIS_PREFIX).ledger;
    const results = queueOf(stack, QueueName.Results);
    try {
      const old = Date.now() - 5 * 60_000;
      // ghost-1 was accepted (the pool heard so) but its job is gone; ghost-2 never got its reply out.
      await redis.hset(ledgerKey, 'ghost-1', JSON.stringify({ cpuScore: 0, memoryMb: 128, gpuScore: 0, gpuMemoryGb: 0, at: old }));
      await state.tasks.accepted('ghost-1', old, 'test');
      await state.tasks.replied('ghost-1', old);
      await redis.hset(ledgerKey, 'ghost-2', JSON.stringify({ cpuScore: 0, memoryMb: 128, gpuScore: 0, gpuMemoryGb: 0, at: old }));
      const job = await waitFor('a result job for ghost-1', async () => Job.fromId(results, 'ghost-1'), 20_000);
      expect(job.data).toMatchObject({ taskId: 'ghost-1', status: 'Failed', code: 'lost', reason: expect.stringContaining('the task was lost') });
      // The result job names no file: its zip is where every task's result is, by its id.
      expect(job.data).not.toHaveProperty('resultFile');
      const exec = (await unzip(await fs.readFile(path.join(stack.env.WORK_DIR, 'results', 'ghost-1.zip')))).get('execution_log.txt')!.data.toString();
      expect(exec).toContain('Status: Failed');
      // The pool never heard ghost-2 was accepted, and will offer it again: only its share is freed.
      await waitFor('ghost-2 to be released', async () => !(await state.ledger.holds('ghost-2')), 20_000);
      expect(await Job.fromId(results, 'ghost-2')).toBeUndefined();
    } finally {
      // devpool never heard of ghost-1, so its upload would be retried: clear it away.
      await (await Job.fromId(results, 'ghost-1'))?.remove().catch(() => undefined);
      await state.ledger.release('ghost-1');
      await results.close();
      redis.disconnect();
      await state.close();
    }
  });

  it('drains on SIGTERM: a task past DRAIN_TIMEOUT is stopped and its result says why; the executor exits cleanly', async () => {
    expect((await uploadTask(pool, 'drain-1', await counting(60))).success).toBe(true);
    await waitFor('drain-1 to start', async () => (await containerOf('drain-1')).some((c) => c.State === 'running'));
    const t0 = Date.now();
    expect(await stack.stop(executor, 'SIGTERM')).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    executor = await stack.start('executor');
    expect((await waitForStatus(pool, 'drain-1', ['COMPLETED', 'FAILED'], 60_000)).status).toBe('COMPLETED');
    const exec = (await result('drain-1')).get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Status: Stopped');
    expect(exec).toContain('Reason: stopped because the node is shutting down');
    expect(await containerOf('drain-1')).toEqual([]);
  });

  it('reports Draining to the pool when the gateway is stopped', async () => {
    const gateway = stack.services.find((s) => s.name === 'gateway')!;
    expect(await stack.stop(gateway, 'SIGTERM')).toBe(0);
    // The pool heard Draining: it offers the node no task (had it still thought the node Idle,
    // it would offer it this one and record that it could not reach the node).
    expect((await uploadTask(pool, 'after-drain', await counting(1))).success).toBe(true);
    await new Promise((r) => setTimeout(r, 5000)); // ten dispatch rounds
    expect(await taskInfo(pool, 'after-drain')).toMatchObject({ status: 'PENDING', message: NEVER_OFFERED });
  });
});
