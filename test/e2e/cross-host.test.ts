import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import IORedis from 'ioredis';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { NodeStateConnection } from '@hivemind/shared/state/node-state';
import { RedisKeys } from '@hivemind/shared/state/redis-keys';
import { ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { makeZip } from '../support/zips';
import { nodeStateOf } from '../support/node-state';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';

/**
 * TASK_STORE=redis: the gateway and two executors with a WORK_DIR each (as on three
 * machines that share only Redis). Every task's zip reaches an executor through Redis,
 * every result reaches the gateway the same way, and nothing is left in Redis after.
 */
describe('executors that share no filesystem with the gateway (TASK_STORE=redis)', () => {
  let stack: Stack;
  let pool: PoolClient;
  // Raw: the blobs' presence in Redis, which the task store does not expose without fetching them.
  let redis: IORedis;
  let state: NodeStateConnection;

  beforeAll(async () => {
    stack = await Stack.create('xhost', { TASK_STORE: 'redis', TASK_STORE_MAX_MB: '8', EXECUTOR_CONCURRENCY: '1', MAX_CONCURRENT_TASKS: '4', TASK_DEFAULT_CPUS: '0.5', TASK_DEFAULT_MEMORY_MB: '256' });
    await stack.start('devpool');
    await stack.start('gateway');
    await stack.start('executor', { WORK_DIR: path.join(stack.dir, 'host-b') });
    await stack.start('executor', { WORK_DIR: path.join(stack.dir, 'host-c') });
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
    redis = new IORedis(stack.env.REDIS_URL);
    state = nodeStateOf(stack);
  });

  afterAll(async () => {
    pool?.close();
    redis?.disconnect();
    await state?.close();
    await stack?.stopAll();
  });

  it('runs tasks on both executors from zips and results that travel through Redis', async () => {
    const ids = ['xh-1', 'xh-2', 'xh-3', 'xh-4'];
    const task = (id: string) =>
      makeZip([
        { name: 'run.py', content: `import os, time\ntime.sleep(3)\nopen(os.path.join(os.environ["RESULT_DIR"], "out.txt"), "w").write("done ${id}")\nprint("ran ${id}")\n` },
        // Incompressible data, so the blobs span several 1 MiB chunks.
        { name: 'data.bin', content: randomBytes(1536 * 1024) },
      ], false);
    const hosts = ['host-b', 'host-c'];
    const keys = new RedisKeys(stack.env.REDIS_PREFIX); // for the blobs' keys only (see `redis`)
    // While the tasks run: which executor runs each (the node's running tasks in Redis), on
    // which host its workspace is (files on disk), and that its zip sits in the task store.
    const ranBy = new Map<string, Set<string>>(ids.map((id) => [id, new Set()]));
    const ranOn = new Map<string, Set<string>>(ids.map((id) => [id, new Set()]));
    const inStore = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const [id, t] of await state.running.all()) ranBy.get(id)?.add(t.executorId);
        for (const id of ids) {
          for (const h of hosts) if (await fs.stat(path.join(stack.dir, h, 'workspaces', id)).then(() => true, () => false)) ranOn.get(id)!.add(h);
          if (await redis.exists(keys.blob('task', id))) inStore.add(id);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    for (const id of ids) expect(await uploadTask(pool, id, await task(id))).toEqual({ success: true, message: `task ${id} uploaded` });

    for (const id of ids) {
      const done = await waitForStatus(pool, id, ['COMPLETED', 'FAILED']).catch((err: Error) => {
        throw new Error(`${err.message}\n${stack.logs()}`);
      });
      expect(done.status).toBe('COMPLETED');
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: id, token }));
      const files = await unzip(Buffer.from(res.result_zip));
      expect(files.get('execution_log.txt')?.data.toString()).toContain('Status: Success');
      expect(files.get('result/out.txt')?.data.toString()).toBe(`done ${id}`);
      expect(files.get('data.bin')?.data.length).toBe(1536 * 1024);
    }

    watching = false;
    await watch;
    // Each task ran once, on one host, by one executor; both executors ran some; and every
    // zip travelled through the task store (the executors' hosts share no folder with the gateway).
    expect(ids.map((id) => ranBy.get(id)!.size)).toEqual([1, 1, 1, 1]);
    expect(new Set(ids.map((id) => [...ranBy.get(id)!][0])).size).toBe(2);
    expect(ids.map((id) => ranOn.get(id)!.size)).toEqual([1, 1, 1, 1]);
    expect(new Set(ids.map((id) => [...ranOn.get(id)!][0]))).toEqual(new Set(hosts));
    expect([...inStore].sort()).toEqual(ids);
    // The executors' results never were in the gateway's WORK_DIR: it read them from Redis.
    expect(await fs.readdir(path.join(stack.dir, 'work', 'results')).catch(() => [])).toEqual([]);

    // Blobs are removed once the pool has each result (the gateway's last step is async).
    for (let i = 0; i < 40; i++) {
      if ((await redis.keys(`${stack.env.REDIS_PREFIX}:blob:*`)).length === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await redis.keys(`${stack.env.REDIS_PREFIX}:blob:*`)).toEqual([]);
  });

  it('refuses a task zip larger than TASK_STORE_MAX_MB, saying so', async () => {
    const zip = await makeZip([{ name: 'run.py', content: 'print(1)' }, { name: 'big.bin', content: randomBytes(9 * 1024 * 1024) }], false);
    expect(await uploadTask(pool, 'xh-big', zip)).toEqual({ success: true, message: 'task xh-big uploaded' });
    // The pool keeps offering a refused task, and shows the node's reason with it.
    const t = await waitFor('the pool to show the refusal', async () => {
      const info = await taskInfo(pool, 'xh-big');
      return info?.message.startsWith('refused by') ? info : null;
    }, 60_000);
    expect(t.status).toBe('PENDING');
    expect(t.message).toMatch(/^refused by alice: the task zip is \d+ bytes; this node's task store \(TASK_STORE=redis\) holds at most 8388608 bytes \(TASK_STORE_MAX_MB\)/);
    expect(await redis.exists(new RedisKeys(stack.env.REDIS_PREFIX).blob('task', 'xh-big'))).toBe(0);
  });
});
