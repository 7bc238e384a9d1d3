import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { isMountPoint, WorkspaceQuota } from '../../apps/executor/src/workspace/quota';

const logger = pino({ level: 'silent' });
const MB = 1024 * 1024;

async function fill(file: string, mb: number): Promise<{ written: number; error: string | null }> {
  const fh = await fs.open(file, 'w');
  let written = 0;
  try {
    for (let i = 0; i < mb; i++) {
      await fh.write(Buffer.alloc(MB));
      written += 1;
    }
    await fh.sync();
    return { written, error: null };
  } catch (err) {
    return { written, error: (err as NodeJS.ErrnoException).code ?? String(err) };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

describe('workspace quota', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-quota-'));
  });

  afterEach(async () => {
    // Never leave a volume mounted behind, even when a test failed half way.
    await new WorkspaceQuota('loop', path.join(dir, 'volumes'), logger).release('t1', path.join(dir, 'ws'));
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('auto picks loop here (root, loop devices); a loop workspace refuses writes past its size and goes away on release', async () => {
    const quota = await WorkspaceQuota.detect('auto', path.join(dir, 'volumes'), logger);
    expect(quota.mode).toBe(process.getuid?.() === 0 ? 'loop' : 'watch');
    if (quota.mode !== 'loop') return;
    const ws = path.join(dir, 'ws');
    await quota.create('t1', ws, 16 * MB);
    expect(await isMountPoint(ws)).toBe(true);
    expect(await quota.full(ws, 16 * MB)).toBe(false);
    const r = await fill(path.join(ws, 'big'), 64);
    expect(r.error).toBe('ENOSPC');
    expect(r.written).toBeGreaterThanOrEqual(15);
    expect(r.written).toBeLessThanOrEqual(20);
    expect(await quota.full(ws, 16 * MB)).toBe(true);
    await quota.release('t1', ws);
    expect(await isMountPoint(ws)).toBe(false);
    expect(await fs.readdir(path.join(dir, 'volumes'))).toEqual([]);
    // The files were on the volume: the folder is empty again.
    expect(await fs.readdir(ws)).toEqual([]);
  });

  it('formats the next volume ahead: the next task of the same quota gets it, bounded the same, and it is dropped on shutdown', async () => {
    const volumes = path.join(dir, 'volumes');
    const quota = new WorkspaceQuota('loop', volumes, logger);
    const spares = async () => (await fs.readdir(`${volumes}-spare`).catch(() => [] as string[])).length;
    const ws1 = path.join(dir, 'ws1');
    const ws2 = path.join(dir, 'ws2');
    try {
      await quota.create('s1', ws1, 24 * MB);
      // The first volume of a quota finds the image size; the spare for the next is being formatted.
      for (let i = 0; i < 100 && (await spares()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await spares()).toBe(1);
      await new Promise((r) => setTimeout(r, 500));
      const [spare] = await fs.readdir(`${volumes}-spare`);
      const spareInode = (await fs.stat(path.join(`${volumes}-spare`, spare))).ino;
      await quota.create('s2', ws2, 24 * MB);
      // The task's volume is that very file, moved into place.
      expect((await fs.stat(quota.imageFile('s2'))).ino).toBe(spareInode);
      expect(await isMountPoint(ws2)).toBe(true);
      const st = await fs.statfs(ws2);
      expect(Math.abs(st.bavail * st.bsize - 24 * MB)).toBeLessThanOrEqual(1.5 * MB);
      const res = await fill(path.join(ws2, 'big'), 40);
      expect(res.error).toBe('ENOSPC');
      expect(res.written).toBeLessThanOrEqual(25);
    } finally {
      await quota.release('s1', ws1);
      await quota.release('s2', ws2);
    }
    await quota.dropSpares();
    expect(await spares()).toBe(0);
  });

  it('watch measures the folder and says when it is past the quota', async () => {
    const quota = new WorkspaceQuota('watch', path.join(dir, 'volumes'), logger);
    const ws = path.join(dir, 'ws');
    await quota.create('t2', ws, 4 * MB);
    await fill(path.join(ws, 'a'), 3);
    expect(await quota.full(ws, 4 * MB)).toBe(false);
    await fs.mkdir(path.join(ws, 'sub'));
    await fill(path.join(ws, 'sub', 'b'), 2);
    expect((await quota.usage(ws, 4 * MB))!.usedBytes).toBeGreaterThanOrEqual(5 * MB);
    expect(await quota.full(ws, 4 * MB)).toBe(true);
  });

  it('off never reports full', async () => {
    const quota = new WorkspaceQuota('off', path.join(dir, 'volumes'), logger);
    const ws = path.join(dir, 'ws');
    await quota.create('t3', ws, 1 * MB);
    await fill(path.join(ws, 'a'), 2);
    expect(await quota.full(ws, 1 * MB)).toBe(false);
  });
});
