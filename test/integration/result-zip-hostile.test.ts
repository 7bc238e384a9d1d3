import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yauzl from 'yauzl';
import { extractZip } from '@hivemind/shared/task-format/zip-extract';
import { ExecutionRecord, ResultBudgetError, writeResultZip } from '@hivemind/shared/task-format/result-zip';
import { unzip } from '../support/unzip';

/** Every entry name of a zip, duplicates included (unzip() keys a Map by name). */
function entryNames(file: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      const names: string[] = [];
      zip.on('error', reject);
      zip.on('entry', (e: yauzl.Entry) => {
        names.push(e.fileName);
        zip.readEntry();
      });
      zip.on('end', () => resolve(names));
      zip.readEntry();
    });
  });
}

/**
 * Hostile workspaces meet the result packer (issue 13, cases 2 and 7): real files in a
 * temporary folder, packed by writeResultZip with its budget.
 */
describe('packing a hostile workspace', () => {
  let dir: string;
  let ws: string;
  let out: string;
  let logFile: string;
  const record: ExecutionRecord = {
    taskId: 't-hostile',
    status: 'Success',
    reason: 'exited with code 0',
    exitCode: 0,
    startedAt: new Date('2026-01-01T00:00:00Z'),
    finishedAt: new Date('2026-01-01T00:00:01Z'),
    nodeId: 'alice',
    entryPoint: 'run.py',
    runtime: 'docker',
  };

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-result-hostile-'));
    ws = path.join(dir, 'ws');
    await fs.mkdir(ws);
    await fs.writeFile(path.join(ws, 'run.py'), 'print(1)');
    out = path.join(dir, 'results', 'r.zip');
    logFile = path.join(dir, 'task.log');
    await fs.writeFile(logFile, 'the task printed this\n');
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** What is left in the results folder (no zip, no partial file, after a failed pack). */
  const leftovers = () => fs.readdir(path.dirname(out)).catch(() => [] as string[]);

  it('leaves out a 1 TiB sparse file without reading it, and says why', async () => {
    const handle = await fs.open(path.join(ws, 'z'), 'w');
    await handle.truncate(2 ** 40);
    await handle.close();
    await fs.writeFile(path.join(ws, 'small.txt'), 'kept');
    const t0 = Date.now();
    const size = await writeResultZip({ workspace: ws, record, logFile, outFile: out, maxZipBytes: 64 * 1024 * 1024, maxReadBytes: 64 * 1024 * 1024 });
    const took = Date.now() - t0;
    // Deflating a TiB of zeros takes hours; leaving the file out takes milliseconds.
    // The bound is generous for a busy test machine.
    expect(took).toBeLessThan(20_000);
    expect(size).toBeLessThan(64 * 1024);
    const entries = await unzip(await fs.readFile(out));
    expect(entries.has('z')).toBe(false);
    expect(entries.get('small.txt')!.data.toString()).toBe('kept');
    const exec = entries.get('execution_log.txt')!.data.toString();
    expect(exec).toMatch(/^Not packed \(sparse: 1099511627776 bytes apparent, \d+ allocated\): z$/m);
    expect(exec).toContain('Status: Success');
  });

  it('stops with read_too_large when the files to pack pass maxReadBytes, leaving no file', async () => {
    await fs.writeFile(path.join(ws, 'dense.bin'), randomBytes(3 * 1024 * 1024));
    const err = await writeResultZip({ workspace: ws, record, logFile, outFile: out, maxReadBytes: 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResultBudgetError);
    expect((err as ResultBudgetError).kind).toBe('read_too_large');
    expect((err as ResultBudgetError).message).toContain('1048576 bytes');
    expect(await leftovers()).toEqual([]);
  });

  it('counts the bytes it reads, so a file that grew after the walk is still bounded', async () => {
    await fs.writeFile(path.join(ws, 'grows.bin'), randomBytes(3 * 1024 * 1024));
    // The walk sees the file as it was before it grew (1 byte); reading finds 3 MiB.
    const realLstat = fs.lstat.bind(fs);
    jest.spyOn(fs, 'lstat').mockImplementation((async (p: string) => {
      const st = await realLstat(p);
      if (String(p).endsWith('grows.bin')) Object.assign(st, { size: 1 });
      return st;
    }) as unknown as typeof fs.lstat);
    const err = await writeResultZip({ workspace: ws, record, logFile, outFile: out, maxReadBytes: 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResultBudgetError);
    expect((err as ResultBudgetError).kind).toBe('read_too_large');
    expect(await leftovers()).toEqual([]);
  });

  it('stops with zip_too_large as soon as the zip passes maxZipBytes, leaving no file', async () => {
    await fs.writeFile(path.join(ws, 'noise.bin'), randomBytes(4 * 1024 * 1024));
    const err = await writeResultZip({ workspace: ws, record, logFile, outFile: out, maxZipBytes: 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResultBudgetError);
    expect((err as ResultBudgetError).kind).toBe('zip_too_large');
    expect((err as ResultBudgetError).message).toContain('1048576 bytes');
    expect(await leftovers()).toEqual([]);
  });

  it('packs within its budget as before', async () => {
    await fs.writeFile(path.join(ws, 'noise.bin'), randomBytes(256 * 1024));
    const size = await writeResultZip({ workspace: ws, record, logFile, outFile: out, maxZipBytes: 1024 * 1024, maxReadBytes: 1024 * 1024 });
    expect(size).toBe((await fs.stat(out)).size);
    const entries = await unzip(await fs.readFile(out));
    expect(entries.get('noise.bin')!.data.length).toBe(256 * 1024);
    expect(await leftovers()).toEqual(['r.zip']);
  });

  it('an abort mid-pack rejects with the signal\'s reason and leaves neither the zip nor a partial file', async () => {
    await fs.writeFile(path.join(ws, 'noise.bin'), randomBytes(64 * 1024 * 1024));
    const ctl = new AbortController();
    const reason = new Error('task stopped by its owner');
    const packing = writeResultZip({ workspace: ws, record, logFile, outFile: out, signal: ctl.signal });
    const settled = packing.then(() => 'finished', (e: unknown) => e);
    // Abort once the partial file exists: packing has begun (64 MiB of noise takes a while to deflate).
    for (;;) {
      const names = await leftovers();
      if (names.some((n) => n.endsWith('.partial'))) break;
      expect(names).not.toContain('r.zip');
      await new Promise((r) => setTimeout(r, 2));
    }
    ctl.abort(reason);
    expect(await settled).toBe(reason);
    expect(await leftovers()).toEqual([]);
  });

  it('an aborted signal stops it before it starts', async () => {
    const ctl = new AbortController();
    const reason = new Error('draining');
    ctl.abort(reason);
    await expect(writeResultZip({ workspace: ws, record, logFile, outFile: out, signal: ctl.signal })).rejects.toBe(reason);
    expect(await leftovers()).toEqual([]);
  });

  it('leaves out a top-level folder execution_log.txt/ and other reserved names, so the result unpacks', async () => {
    await fs.mkdir(path.join(ws, 'execution_log.txt', 'deeper'), { recursive: true });
    await fs.writeFile(path.join(ws, 'execution_log.txt', 'inside.txt'), 'Status: Success (forged)');
    await fs.writeFile(path.join(ws, 'execution_log.txt', 'deeper', 'more.txt'), 'x');
    await fs.mkdir(path.join(ws, 'task_logs.txt'));
    await fs.writeFile(path.join(ws, 'TASK_STOPPED.TXT'), 'forged, for case-insensitive file systems');
    await fs.mkdir(path.join(ws, 'sub'));
    await fs.writeFile(path.join(ws, 'sub', 'execution_log.txt'), 'the task\'s own, deeper down');
    await writeResultZip({ workspace: ws, record: { ...record, status: 'Stopped' }, logFile, outFile: out });
    const names = await entryNames(out);
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => n.toLowerCase().startsWith('execution_log.txt'))).toEqual(['execution_log.txt']);
    expect(names.filter((n) => n.toLowerCase().startsWith('task_logs.txt'))).toEqual(['task_logs.txt']);
    expect(names.filter((n) => n.toLowerCase().startsWith('task_stopped.txt'))).toEqual(['task_stopped.txt']);
    expect(names).toContain('sub/execution_log.txt');
    // devpool's `submit` unpacks with extractZip: it used to fail (EISDIR) on exactly this.
    const unpacked = path.join(dir, 'unpacked');
    await extractZip(out, '', unpacked, { maxEntries: 1000, maxUncompressedBytes: 1024 * 1024 });
    const exec = await fs.readFile(path.join(unpacked, 'execution_log.txt'), 'utf8');
    expect(exec).toMatch(/^Task ID: t-hostile$/m);
    expect(exec).toMatch(/^Status: Stopped$/m);
    expect(exec).not.toContain('forged');
    expect(exec).toContain('Not packed (name reserved by the worker): execution_log.txt/');
    expect(exec).toContain('Not packed (name reserved by the worker): task_logs.txt/');
    expect(exec).toContain('Not packed (name reserved by the worker): TASK_STOPPED.TXT');
    expect(await fs.readFile(path.join(unpacked, 'task_logs.txt'), 'utf8')).toBe('the task printed this\n');
    expect(await fs.readFile(path.join(unpacked, 'sub', 'execution_log.txt'), 'utf8')).toBe('the task\'s own, deeper down');
  });

  it('writes a file name with a newline escaped on one line, so it cannot forge a Status line', async () => {
    const evil = 'evil\nStatus: Failed\u2028Status: Failed';
    const handle = await fs.open(path.join(ws, evil), 'w');
    await handle.truncate(2 ** 30);
    await handle.close();
    await fs.writeFile(path.join(ws, 'a\\b'), 'a backslash: a folder separator to zip readers');
    await writeResultZip({ workspace: ws, record, logFile, outFile: out });
    const names = await entryNames(out);
    expect(names).not.toContain(evil);
    expect(names).not.toContain('a/b');
    const exec = (await unzip(await fs.readFile(out))).get('execution_log.txt')!.data.toString();
    expect(exec.match(/^Status: /gmu)).toEqual(['Status: ']);
    expect(exec).toContain(`Not packed (sparse: 1073741824 bytes apparent, 0 allocated): "evil\\nStatus: Failed\\u2028Status: Failed"`);
    expect(exec).toContain('Not packed (name contains a backslash): "a\\\\b"');
  });

  it('lists the first 20 files it left out and counts the rest', async () => {
    for (let i = 0; i < 25; i++) {
      const handle = await fs.open(path.join(ws, `sparse-${String(i).padStart(2, '0')}`), 'w');
      await handle.truncate(8 * 1024 * 1024);
      await handle.close();
    }
    await writeResultZip({ workspace: ws, record, logFile, outFile: out });
    const exec = (await unzip(await fs.readFile(out))).get('execution_log.txt')!.data.toString();
    expect(exec.match(/^Not packed \(sparse/gm)).toHaveLength(20);
    expect(exec).toContain('Not packed (sparse: 8388608 bytes apparent, 0 allocated): sparse-19');
    expect(exec).not.toContain('sparse-20');
    expect(exec).toMatch(/^Not packed: and 5 more$/m);
  });
});
