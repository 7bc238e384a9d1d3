import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { removeTree } from '../../apps/executor/src/workspace/remove-tree';
import { ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip, ZipItem } from '../support/zips';

const QUOTA_MB = 32;
const execFileP = promisify(execFile);
const MB = 1024 * 1024;

/** Python that makes, in /workspace, 40 folders of 200-character names one in another (twice PATH_MAX) and goes to the bottom. */
const DEEP = ['import os, time', 'os.chdir("/workspace")', 'n = "d" * 200', 'for i in range(40):', '    os.mkdir(n); os.chdir(n)'].join('\n');

/**
 * Hostile tasks against the host's disk, through the real stack, with the `watch` quota
 * (the mode of every non-root executor): space reserved with fallocate in many files each
 * under the quota, hidden deeper than PATH_MAX; trees that cannot be removed by a plain rm.
 * A failed task's workspace is kept for 2 s and the disk guard runs every second.
 */
describe('hostile tasks against the disk (watch quota)', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('hostile-disk', {
      MAX_CONCURRENT_TASKS: '2',
      WORKSPACE_QUOTA: 'watch',
      WORKSPACE_QUOTA_MB: String(QUOTA_MB),
      FAILED_WORKSPACE_RETENTION: '2',
      DISK_CHECK_INTERVAL: '1',
      MIN_FREE_DISK_MB: '0',
      STOP_GRACE_PERIOD: '1',
      TASK_TIMEOUT: '150',
      LOG_LEVEL: 'info',
    });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
    // Whatever a task left, deep trees included.
    if (stack) await removeTree(stack.dir);
  });

  const workDir = () => stack.env.WORK_DIR;
  /** Bytes allocated under this stack's WORK_DIR (du: what the disk really holds for it, whatever else runs on the machine). */
  const usedBytes = async () => {
    const { stdout } = await execFileP('du', ['-s', '--block-size=1', workDir()]);
    return Number(stdout.split(/\s/)[0]);
  };
  const entries = async (sub: string) => fs.readdir(path.join(workDir(), sub)).catch(() => [] as string[]);

  async function run(taskId: string, items: ZipItem[]): Promise<{ status: string; exec: string; logs: string }> {
    expect(await uploadTask(pool, taskId, await makeZip(items), {})).toEqual({ success: true, message: `task ${taskId} uploaded` });
    const info = await waitForStatus(pool, taskId, ['COMPLETED', 'FAILED', 'STOPPED'], 170_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.logs()}`);
    });
    const files = await waitFor(`the result of ${taskId}`, async () => {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
      return res.success ? unzip(Buffer.from(res.result_zip)) : null;
    });
    return { status: String(info.status), exec: files.get('execution_log.txt')!.data.toString(), logs: files.get('task_logs.txt')?.data.toString() ?? '' };
  }

  /** Nothing of the task is left under WORK_DIR: neither its workspace nor a kept copy (the guard removed it). */
  async function goneFromHost(taskId: string): Promise<void> {
    await waitFor(
      `${taskId}'s files gone from WORK_DIR`,
      async () => {
        const left = [...(await entries('workspaces')), ...(await entries('kept'))].filter((n) => n.startsWith(taskId));
        return left.length ? null : true;
      },
      60_000,
    );
  }

  it('fallocate far past the quota, in many files each under it and deeper than PATH_MAX, is stopped, and the disk comes back', async () => {
    const before = await usedBytes();
    const hog = [
      DEEP,
      // 40 files of 24 MB: each under the quota (and any per-file limit), 960 MB together.
      'for i in range(40):',
      '    fd = os.open("f%d" % i, os.O_CREAT | os.O_WRONLY, 0o600)',
      '    os.posix_fallocate(fd, 0, 24 << 20)',
      '    os.close(fd)',
      '    print("allocated", (i + 1) * 24, "MB", flush=True)',
      '    time.sleep(0.1)',
      'print("all allocated", flush=True)',
      'time.sleep(600)',
    ].join('\n');
    const r = await run('falloc', [{ name: 'main.py', content: hog }]);
    expect(r.exec).toContain('Status: Failed');
    expect(r.exec).toContain(`Reason: workspace quota exceeded: the task wrote more than its ${QUOTA_MB} MB workspace quota`);
    // Seen and stopped on the way (it takes 4 s to allocate them all), not at its end.
    expect(r.logs).toContain('allocated 24 MB');
    expect(r.logs).not.toContain('all allocated');
    await goneFromHost('falloc');
    // What it allocated (well past the quota) is released: WORK_DIR holds about what it held before.
    expect(await usedBytes()).toBeLessThan(before + 20 * MB);
  });

  it('a failed task that leaves a tree deeper than PATH_MAX with closed folders leaves nothing behind', async () => {
    const deep = [
      DEEP,
      'open("data", "wb").write(b"x" * (1 << 20))',
      'open("ro", "w").write("read-only"); os.chmod("ro", 0o444)',
      'os.makedirs("closed/inner"); open("closed/inner/f", "w").write("x")',
      'os.chmod("closed/inner", 0); os.chmod("closed", 0)',
      'print("deep tree made", flush=True)',
      'raise SystemExit(1)',
    ].join('\n');
    const r = await run('deep', [{ name: 'main.py', content: deep }]);
    expect(r.exec).toContain('Status: Failed');
    expect(r.logs).toContain('deep tree made');
    await goneFromHost('deep');
  });
});
