import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { executeRequest, ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { waitForReportedStatus } from '../support/node-state';
import { Stack, waitFor } from '../support/stack';
import { makeZip } from '../support/zips';

const exists = (p: string) => fs.stat(p).then(() => true, () => false);

describe('failed workspaces are kept for a while', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('retain', { FAILED_WORKSPACE_RETENTION: '5', DISK_CHECK_INTERVAL: '1', WORKSPACE_QUOTA_MB: '64', LOG_LEVEL: 'info' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  it('keeps a failed task workspace for FAILED_WORKSPACE_RETENTION, then deletes it; a successful one is not kept', async () => {
    const w = stack.env.WORK_DIR;
    const failing = 'open("debug.txt", "w").write("what went wrong")\nraise SystemExit(3)\n';
    expect((await uploadTask(pool, 'keepme', await makeZip([{ name: 'main.py', content: failing }]))).success).toBe(true);
    expect((await uploadTask(pool, 'okay', await makeZip([{ name: 'main.py', content: 'print("fine")' }]))).success).toBe(true);
    await waitForStatus(pool, 'keepme', ['COMPLETED']);
    await waitForStatus(pool, 'okay', ['COMPLETED']);
    const kept = await waitFor('the kept workspace', async () => {
      for (const p of [path.join(w, 'kept', 'keepme.img'), path.join(w, 'kept', 'keepme')]) if (await exists(p)) return p;
      return null;
    }, 20_000, 100);
    const t0 = Date.now();
    if (kept.endsWith('.img')) {
      // A loop volume's image: the task's folder is inside the ext4 image.
      expect(execFileSync('debugfs', ['-R', 'cat /ws-keepme/debug.txt', kept], { stdio: ['ignore', 'pipe', 'ignore'] }).toString()).toBe('what went wrong');
    } else {
      expect(await fs.readFile(path.join(kept, 'debug.txt'), 'utf8')).toBe('what went wrong');
    }
    expect(await exists(path.join(w, 'workspaces', 'keepme'))).toBe(false);
    expect(await exists(path.join(w, 'kept', 'okay'))).toBe(false);
    expect(await exists(path.join(w, 'kept', 'okay.img'))).toBe(false);
    await waitFor('the kept workspace to expire', async () => !(await exists(kept)), 20_000, 200);
    expect(Date.now() - t0).toBeGreaterThan(2000);
  });
});

describe('a node low on disk', () => {
  let stack: Stack;

  afterAll(async () => {
    await stack?.stopAll();
  });

  it('reports a non-Idle status, refuses tasks with a message, and collects its kept workspaces', async () => {
    // No disk has a petabyte free: this node is always "low".
    stack = await Stack.create('lowdisk', { MIN_FREE_DISK_MB: String(1024 ** 3), DISK_CHECK_INTERVAL: '1', LOG_LEVEL: 'info' });
    const old = path.join(stack.env.WORK_DIR, 'kept', 'old-task');
    await fs.mkdir(old, { recursive: true });
    await fs.writeFile(path.join(old, 'big.bin'), Buffer.alloc(1024));
    await stack.start('devpool');
    await stack.start('executor');
    await stack.start('gateway');
    await waitForReportedStatus(stack, 'Low disk');
    await waitFor('the kept workspace collected', async () => !(await exists(old)), 20_000, 200);
    const worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
    try {
      const res = await unary(worker, worker.executeTask, executeRequest({ task_id: 'low-1', task_zip: await makeZip([{ name: 'run.py', content: 'print(1)' }]) }));
      expect(res.success).toBe(false);
      expect(res.message).toMatch(/^the node is low on disk: \d+ MB free under WORK_DIR, below MIN_FREE_DISK_MB \(1073741824 MB\); try again later$/);
    } finally {
      worker.close();
    }
  });
});
