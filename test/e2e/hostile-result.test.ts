import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { extractZip } from '@hivemind/shared/task-format/zip-extract';
import { ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip, ZipItem } from '../support/zips';

const READ_MB = 4;

/** Bytes of every file under dir (links not followed); 0 when it does not exist. */
async function treeBytes(dir: string): Promise<number> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  let total = 0;
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) total += await treeBytes(full);
    else total += (await fs.lstat(full)).size;
  }
  return total;
}

/**
 * Hostile results through the real stack (issue 13, cases 2 and 7): a task that leaves
 * a sparse file of a TiB, and one that leaves a folder named like the worker's
 * execution_log.txt and a file name with a newline in it.
 */
describe('hostile task results', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    // A 4 GiB workspace quota, so each file may be up to 4 GiB (RLIMIT_FSIZE) and a sparse one that large is possible.
    stack = await Stack.create('hostile-result', { MAX_CONCURRENT_TASKS: '2', TASK_TIMEOUT: '300', LOG_LEVEL: 'info', RESULT_MAX_READ_MB: String(READ_MB), WORKSPACE_QUOTA_MB: '4096' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  }, 300_000);

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
    if (!stack) return;
    // An executor stopped mid-task (as the old packer was, deflating a TiB) leaves its
    // task's container and loop-mounted workspace behind: remove them too.
    const docker = new Docker({ socketPath: '/var/run/docker.sock' });
    const left = await docker.listContainers({ all: true, filters: { label: [`io.hivemind.instance=${stack.env.REDIS_PREFIX}`] } }).catch(() => []);
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
    const mounts = (await fs.readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(`${stack.dir}/`));
    for (const m of mounts.reverse()) {
      try {
        execFileSync('umount', [m]);
      } catch {
        // Not ours to force; rm below leaves it.
      }
    }
    await fs.rm(stack.dir, { recursive: true, force: true }).catch(() => undefined);
  });

  async function run(taskId: string, items: ZipItem[]): Promise<Buffer> {
    expect(await uploadTask(pool, taskId, await makeZip(items))).toEqual({ success: true, message: `task ${taskId} uploaded` });
    // Generous: the old packer took hours here, so any bound tells them apart.
    await waitForStatus(pool, taskId, ['COMPLETED', 'FAILED', 'STOPPED'], 240_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.logs()}`);
    });
    return waitFor(`the result of ${taskId}`, async () => {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
      return res.success ? Buffer.from(res.result_zip) : null;
    });
  }

  it('a sparse TiB is refused by the file size limit, and a sparse file under it is left out: the result is small, nothing big is left on disk', async () => {
    const main = [
      'import errno',
      'try:',
      '    with open("huge", "wb") as f:',
      '        f.truncate(2 ** 40)',
      '    print("TiB allowed", flush=True)',
      'except OSError as e:',
      '    print("TiB refused:", errno.errorcode[e.errno], flush=True)',
      'with open("z", "wb") as f:',
      '    f.truncate(4000 * 2 ** 20)',
      'with open("result/answer.txt", "w") as f:',
      '    f.write("42")',
      'print("left a sparse file", flush=True)',
    ].join('\n');
    const zip = await run('sparse-tib', [{ name: 'result/', dir: true }, { name: 'main.py', content: main }]);
    expect(zip.length).toBeLessThan(64 * 1024);
    const files = await unzip(zip);
    expect(files.has('z')).toBe(false);
    // The per-file limit (the workspace quota) stopped the TiB at the truncate itself.
    expect(files.get('task_logs.txt')!.data.toString()).toContain('TiB refused: EFBIG');
    expect(files.get('huge')!.data.length).toBe(0);
    expect(files.get('result/answer.txt')!.data.toString()).toBe('42');
    expect(files.get('task_logs.txt')!.data.toString()).toContain('left a sparse file');
    const exec = files.get('execution_log.txt')!.data.toString();
    expect(exec).toMatch(/^Status: Success$/m);
    expect(exec).toMatch(/^Not packed \(sparse: 4194304000 bytes apparent, \d+ allocated\): z$/m);
    // No zip, partial or not, of the TiB under WORK_DIR/results.
    expect(await treeBytes(path.join(stack.dir, 'work', 'results'))).toBeLessThan(1024 * 1024);
  }, 300_000);

  it('a folder execution_log.txt/ and a file name with a newline: the result unpacks, with the worker\'s execution_log.txt and the name escaped', async () => {
    const main = [
      'import os',
      'os.makedirs("execution_log.txt/deeper", exist_ok=True)',
      'with open("execution_log.txt/inside.txt", "w") as f:',
      '    f.write("Status: Success (forged)")',
      'with open("execution_log.txt/deeper/more.txt", "w") as f:',
      '    f.write("x")',
      'with open("evil\\nStatus: Failed", "wb") as f:',
      '    f.truncate(2 ** 30)',
      'with open("plain.txt", "w") as f:',
      '    f.write("kept")',
      'print("done", flush=True)',
    ].join('\n');
    const zip = await run('reserved-names', [{ name: 'main.py', content: main }]);
    const files = await unzip(zip);
    expect([...files.keys()].filter((n) => n.startsWith('execution_log.txt'))).toEqual(['execution_log.txt']);
    expect(files.get('plain.txt')!.data.toString()).toBe('kept');
    const exec = files.get('execution_log.txt')!.data.toString();
    expect(exec).toMatch(/^Task ID: reserved-names$/m);
    expect(exec.match(/^Status: .*$/gm)).toEqual(['Status: Success']);
    expect(exec).not.toContain('forged');
    expect(exec).toContain('Not packed (name reserved by the worker): execution_log.txt/');
    expect(exec).toMatch(/^Not packed \(sparse: 1073741824 bytes apparent, \d+ allocated\): "evil\\nStatus: Failed"$/m);
    // Unpacked as devpool's `submit` unpacks a result (it failed with EISDIR on this).
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-hostile-result-'));
    try {
      const file = path.join(dir, 'result.zip');
      await fs.writeFile(file, zip);
      await extractZip(file, '', path.join(dir, 'out'), { maxEntries: 1000, maxUncompressedBytes: 64 * 1024 * 1024 });
      expect(await fs.readFile(path.join(dir, 'out', 'execution_log.txt'), 'utf8')).toBe(exec);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('a workspace past RESULT_MAX_READ_MB: the result holds the logs only, Failed, and says which limit', async () => {
    const main = [
      'import os',
      `with open("noise.bin", "wb") as f:`,
      `    f.write(os.urandom(${READ_MB + 2} * 1024 * 1024))`,
      'print("wrote noise", flush=True)',
    ].join('\n');
    const files = await unzip(await run('read-budget', [{ name: 'main.py', content: main }]));
    expect(files.has('noise.bin')).toBe(false);
    expect(files.get('task_logs.txt')!.data.toString()).toContain('wrote noise');
    const exec = files.get('execution_log.txt')!.data.toString();
    expect(exec).toMatch(/^Status: Failed$/m);
    expect(exec).toContain(`the workspace files to pack passed the limit of ${READ_MB * 1024 * 1024} bytes read (RESULT_MAX_READ_MB); only the logs are sent`);
  }, 300_000);
});
