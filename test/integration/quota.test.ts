import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { transformSync } from '@swc/core';
import pino from 'pino';
import { isMountPoint, WorkspaceQuota } from '../../apps/executor/src/workspace/quota';
import { removeTree, treeBytes } from '../../apps/executor/src/workspace/remove-tree';

const run = promisify(execFile);
const NOBODY = 65534;

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
    for (const q of quotas.splice(0)) await q.dropUnused().catch(() => undefined);
    for (const line of (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').reverse()) {
      const at = line.split(' ')[4];
      if (at?.startsWith(`${dir}/`)) await run('umount', ['-l', at]).catch(() => undefined);
    }
    await removeTree(dir);
  });

  const quotas: WorkspaceQuota[] = [];
  const loop = (spares = 1) => {
    const q = new WorkspaceQuota('loop', path.join(dir, 'volumes'), logger, spares);
    quotas.push(q);
    return q;
  };
  const slotsDir = () => path.join(dir, 'volumes-slots');
  const slotImages = async () => (await fs.readdir(slotsDir()).catch(() => [] as string[])).filter((n) => n.endsWith('.img')).sort();
  const ws = (task: string) => path.join(dir, 'workspaces', task);

  it('auto picks loop here (root, loop devices); a loop workspace refuses writes past its size and is empty again on release', async () => {
    // Executors starting together share the volumes folder (and, in containers, their pid): each probes on its own.
    const [quota, ...others] = await Promise.all([1, 2, 3].map(() => WorkspaceQuota.detect('auto', path.join(dir, 'volumes'), logger)));
    quotas.push(quota, ...others);
    expect([quota, ...others].map((q) => q.mode)).toEqual(Array(3).fill(process.getuid?.() === 0 ? 'loop' : 'watch'));
    if (quota.mode !== 'loop') return;
    // The probe left nothing behind.
    expect(await fs.readdir(path.join(dir, 'volumes'))).toEqual([]);
    await quota.create('t1', ws('t1'), 16 * MB);
    expect(await fs.readlink(ws('t1'))).toMatch(new RegExp(`^${slotsDir()}/[0-9a-f]{8}-0/ws-t1$`));
    expect(await quota.full(ws('t1'), 16 * MB)).toBe(false);
    const r = await fill(path.join(ws('t1'), 'big'), 64);
    expect(r.error).toBe('ENOSPC');
    expect(r.written).toBeGreaterThanOrEqual(15);
    expect(r.written).toBeLessThanOrEqual(20);
    expect(await quota.full(ws('t1'), 16 * MB)).toBe(true);
    await quota.release('t1', ws('t1'));
    // The link is gone, and the task's folder in the volume with it.
    expect(await fs.lstat(ws('t1')).catch(() => null)).toBeNull();
    const [slot] = (await fs.readdir(slotsDir())).filter((n) => /^[0-9a-f]{8}-0$/.test(n));
    expect(await fs.readdir(path.join(slotsDir(), slot))).toEqual([]);
  });

  it('keeps the volume mounted for the next task, which gets a fresh folder with the whole quota and nothing of the last task', async () => {
    const quota = loop();
    await quota.create('a', ws('a'), 24 * MB);
    const [image] = await slotImages();
    // The task opens its folder to everyone, gives it away and leaves links out of it.
    const canary = path.join(dir, 'canary');
    await fs.mkdir(canary);
    await fs.writeFile(path.join(canary, 'keep'), 'x');
    await fs.writeFile(path.join(ws('a'), 'secret'), 'from a');
    await fs.chmod(ws('a'), 0o777);
    await fs.chown(ws('a'), NOBODY, NOBODY);
    await fs.symlink(canary, path.join(ws('a'), 'out'));
    await fs.mkdir(path.join(ws('a'), 'closed'));
    await fs.symlink(canary, path.join(ws('a'), 'closed', 'out'));
    await fs.chmod(path.join(ws('a'), 'closed'), 0);
    await quota.release('a', ws('a'));
    expect(await fs.readdir(canary)).toEqual(['keep']);

    await quota.create('b', ws('b'), 24 * MB);
    // The same volume: its image file is the one the first task used.
    expect(await slotImages()).toEqual([image]);
    expect(await fs.readdir(ws('b'))).toEqual([]);
    const st = await fs.stat(ws('b'));
    expect([st.uid, st.mode & 0o7777]).toEqual([0, 0o755]);
    const fsStat = await fs.statfs(ws('b'));
    expect(Math.abs(fsStat.bavail * fsStat.bsize - 24 * MB)).toBeLessThanOrEqual(1.5 * MB);
    // On the volume, mounted nosuid and nodev (a container's mount of the folder keeps both).
    const mnt = path.dirname(await fs.readlink(ws('b')));
    expect(await isMountPoint(mnt)).toBe(true);
    const line = (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === mnt);
    expect(line?.split(' ')[5]).toMatch(/nosuid,nodev/);
    await quota.release('b', ws('b'));
  });

  it('empties a folder holding only files, links and empty folders, following none of the links', async () => {
    const quota = loop();
    await quota.create('flat', ws('flat'), 24 * MB);
    const [image] = await slotImages();
    const canary = path.join(dir, 'canary-flat');
    await fs.mkdir(canary);
    await fs.writeFile(path.join(canary, 'keep'), 'x');
    const outside = path.join(dir, 'outside-file');
    await fs.writeFile(outside, 'stays');
    // Links out to a folder and to a file, a read-only file, empty folders (one mode 000), a fifo.
    await fs.symlink(canary, path.join(ws('flat'), 'dir-link'));
    await fs.symlink(outside, path.join(ws('flat'), 'file-link'));
    await fs.writeFile(path.join(ws('flat'), 'ro'), 'data', { mode: 0o400 });
    await fs.mkdir(path.join(ws('flat'), 'result'));
    await fs.mkdir(path.join(ws('flat'), 'shut'), { mode: 0 });
    await run('mkfifo', [path.join(ws('flat'), 'pipe')]);
    await quota.release('flat', ws('flat'));
    expect(await fs.readdir(canary)).toEqual(['keep']);
    expect(await fs.readFile(outside, 'utf8')).toBe('stays');
    // Emptied and kept: the next task gets the same volume, empty.
    await quota.create('after-flat', ws('after-flat'), 24 * MB);
    expect(await slotImages()).toEqual([image]);
    expect(await fs.readdir(ws('after-flat'))).toEqual([]);
    await quota.release('after-flat', ws('after-flat'));
  });

  it('replaces the volume of a task that left more entries than it empties file by file', async () => {
    const quota = loop();
    await quota.create('many', ws('many'), 24 * MB);
    const [first] = await slotImages();
    await run('sh', ['-c', `mkdir "$1/d" && cd "$1/d" && seq 1 2100 | xargs touch`, 'sh', ws('many')]);
    await quota.release('many', ws('many'));
    // The old volume is gone, not emptied: its image with it.
    expect(await slotImages()).toEqual([]);
    await quota.create('next', ws('next'), 24 * MB);
    const [second] = await slotImages();
    expect(second).not.toBe(first);
    expect(await fs.readdir(ws('next'))).toEqual([]);
    await quota.release('next', ws('next'));
  });

  it('replaces the volume when the emptied folder leaves anything behind, or the task wrote much', async () => {
    const quota = loop();
    const slotOf = async (id: string) => path.basename(path.dirname(await fs.readlink(ws(id))));
    // A file still open (a process of the task outliving it) keeps its inode after the removal.
    await quota.create('open', ws('open'), 64 * MB);
    const first = await slotOf('open');
    const held = await fs.open(path.join(ws('open'), 'held'), 'w');
    try {
      await quota.release('open', ws('open'));
    } finally {
      await held.close();
    }
    expect(await slotImages()).toEqual([]);
    await quota.create('big', ws('big'), 64 * MB);
    const second = await slotOf('big');
    expect(second).not.toBe(first);
    expect((await fill(path.join(ws('big'), 'data'), 40)).error).toBeNull();
    await quota.release('big', ws('big'));
    expect(await slotImages()).toEqual([]);
    await quota.create('after', ws('after'), 64 * MB);
    expect(await slotOf('after')).not.toBe(second);
    await quota.release('after', ws('after'));
    // A task that left little is emptied and its volume kept.
    expect(await slotImages()).toHaveLength(1);
  });

  it('never puts a task on the host disk when its slot volume was unmounted behind its back', async () => {
    const quota = loop();
    await quota.create('a', ws('a'), 24 * MB);
    const mnt = path.dirname(await fs.readlink(ws('a')));
    await quota.release('a', ws('a'));
    await run('umount', ['-l', mnt]);
    await quota.create('b', ws('b'), 24 * MB);
    expect((await fs.stat(ws('b'))).dev).not.toBe((await fs.stat(dir)).dev);
    expect(path.dirname(await fs.readlink(ws('b')))).not.toBe(mnt);
    expect(await fs.readdir(mnt).catch(() => [])).toEqual([]);
    await quota.release('b', ws('b'));
  });

  it('a second release of a task while its slot is being emptied leaves the slot alone; the next tasks get a volume each', async () => {
    const quota = loop();
    await quota.create('t', ws('t'), 24 * MB);
    await fs.writeFile(path.join(ws('t'), 'out'), 't');
    // The task's clean-up and the reconciler, say.
    const first = quota.release('t', ws('t'));
    const second = quota.release('t', ws('t'));
    await first;
    await quota.create('u', ws('u'), 24 * MB);
    await second;
    const u = await fs.stat(ws('u'));
    expect(u.dev).not.toBe((await fs.stat(dir)).dev);
    await fs.writeFile(path.join(ws('u'), 'out'), 'u');
    await quota.create('v', ws('v'), 24 * MB);
    expect((await fs.stat(ws('v'))).dev).not.toBe(u.dev);
    expect((await fs.stat(ws('u'))).dev).toBe(u.dev);
    expect(await fs.readFile(path.join(ws('u'), 'out'), 'utf8')).toBe('u');
    await quota.release('u', ws('u'));
    await quota.release('v', ws('v'));
    expect(await slotImages()).toHaveLength(2);
  });

  it("another executor's release of a task in a live executor's slot only removes the link; the slot stays that executor's", async () => {
    const owner = loop();
    await owner.create('t', ws('t'), 24 * MB);
    const mnt = path.dirname(await fs.readlink(ws('t')));
    await fs.writeFile(path.join(ws('t'), 'out'), 't');
    const other = loop();
    await other.release('t', ws('t'));
    expect(await fs.lstat(ws('t')).catch(() => null)).toBeNull();
    expect(await isMountPoint(mnt)).toBe(true);
    expect(await fs.readFile(path.join(mnt, 'ws-t', 'out'), 'utf8')).toBe('t');
    // The owner still releases it, and reuses it.
    await owner.release('t', ws('t'));
    await owner.create('u', ws('u'), 24 * MB);
    expect(path.dirname(await fs.readlink(ws('u')))).toBe(mnt);
    expect(await slotImages()).toHaveLength(1);
    await owner.release('u', ws('u'));
  });

  it('leaves the free volumes of an executor that is alive alone', async () => {
    const alive = loop();
    await alive.create('x', ws('x'), 24 * MB);
    await alive.release('x', ws('x'));
    const other = loop();
    await other.dropUnused();
    await other.create('y', ws('y'), 24 * MB);
    await other.release('y', ws('y'));
    await other.dropUnused();
    expect(await slotImages()).toHaveLength(1);
    await alive.create('z', ws('z'), 24 * MB);
    expect((await fs.stat(ws('z'))).dev).not.toBe((await fs.stat(dir)).dev);
    expect(await slotImages()).toHaveLength(1);
    await alive.release('z', ws('z'));
  });

  it("gives the blocks a task freed back to the image, so a kept image holds no earlier task's data", async () => {
    const quota = loop();
    const allocated = async (image: string) => (await fs.stat(image)).blocks * 512;
    await quota.create('earlier', ws('earlier'), 24 * MB);
    const [image] = await slotImages();
    const before = await allocated(path.join(slotsDir(), image));
    // Written through to the image (a task's files reach the disk as it runs).
    const fh = await fs.open(path.join(ws('earlier'), 'secret'), 'w');
    await fh.write(Buffer.alloc(8 * MB, 'SECRET-OF-EARLIER'));
    await fh.sync();
    await fh.close();
    // And metadata: a name, link targets (in the inode, and in a block), an extended
    // attribute, synced (so a journal, if the volume had one, would hold copies).
    await fs.writeFile(path.join(ws('earlier'), 'NAME-OF-EARLIER'), '');
    await fs.symlink('SHORT-LINK-OF-EARLIER', path.join(ws('earlier'), 'a'));
    await fs.symlink(`LONG-LINK-OF-EARLIER-${'x'.repeat(100)}`, path.join(ws('earlier'), 'b'));
    await run('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], "user.k", b"XATTR-OF-EARLIER"); fd=os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY); os.fsync(fd)', path.join(ws('earlier'), 'NAME-OF-EARLIER')]);
    const written = await allocated(path.join(slotsDir(), image));
    expect(written).toBeGreaterThan(before + 7 * MB);
    await quota.release('earlier', ws('earlier'));
    await quota.create('failed', ws('failed'), 24 * MB);
    expect(await slotImages()).toEqual([image]);
    // ext4 discards freed blocks from a work queue, and drops what is queued once an unmount
    // begins (the test failed under load until the kept image was trimmed offline); a
    // journal kept the metadata (until the volumes had none).
    const target = path.join(dir, 'failed.img');
    expect(await quota.keepVolume('failed', ws('failed'), target)).toBe(true);
    expect(await allocated(target)).toBeLessThan(written - 6 * MB);
    const kept = await fs.readFile(target);
    for (const left of ['SECRET-OF-EARLIER', 'NAME-OF-EARLIER', 'SHORT-LINK-OF-EARLIER', 'LONG-LINK-OF-EARLIER', 'XATTR-OF-EARLIER']) expect([left, kept.includes(left)]).toEqual([left, false]);
  });

  it('keeps a failed task volume as an image holding its folder; the next task gets a new volume', async () => {
    const quota = loop();
    await quota.create('failed', ws('failed'), 24 * MB);
    await fs.writeFile(path.join(ws('failed'), 'debug.txt'), 'what went wrong');
    const target = path.join(dir, 'failed.img');
    expect(await quota.keepVolume('failed', ws('failed'), target)).toBe(true);
    expect(await fs.lstat(ws('failed')).catch(() => null)).toBeNull();
    expect(await slotImages()).toEqual([]);
    const cat = await run('debugfs', ['-R', 'cat /ws-failed/debug.txt', target]);
    expect(cat.stdout).toBe('what went wrong');
    await quota.release('failed', ws('failed'));
    // A task without a volume has nothing to keep.
    expect(await quota.keepVolume('none', ws('none'), path.join(dir, 'none.img'))).toBe(false);
  });

  it('waits for a kept volume still mounted elsewhere for a moment, and keeps none a mount namespace still holds', async () => {
    const quota = loop();
    await quota.create('brief', ws('brief'), 24 * MB);
    await fs.writeFile(path.join(ws('brief'), 'debug.txt'), 'brief');
    // A second mount of the volume for a moment.
    const elsewhere = path.join(dir, 'elsewhere');
    await fs.mkdir(elsewhere);
    await run('mount', ['--bind', path.dirname(await fs.readlink(ws('brief'))), elsewhere]);
    const brief = path.join(dir, 'brief.img');
    const keeping = quota.keepVolume('brief', ws('brief'), brief);
    await new Promise((r) => setTimeout(r, 300));
    await run('umount', [elsewhere]);
    expect(await keeping).toBe(true);
    expect((await run('debugfs', ['-R', 'cat /ws-brief/debug.txt', brief])).stdout).toBe('brief');
    await quota.release('brief', ws('brief'));

    // A process in a mount namespace made while the volume was mounted, working in a folder
    // on it (private: our unmount does not reach it; and removing the slot's folder detaches
    // its copy of the mount only lazily, the volume in use).
    await quota.create('held', ws('held'), 24 * MB);
    const ns = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'cd "$1" && exec sleep 60', 'sh', await fs.readlink(ws('held'))], { stdio: 'ignore' });
    try {
      // Ready once it runs sleep (after the cd).
      for (let i = 0; i < 250 && (await fs.readFile(`/proc/${ns.pid}/comm`, 'utf8').catch(() => '')) !== 'sleep\n'; i++) await new Promise((r) => setTimeout(r, 20));
      const held = path.join(dir, 'held.img');
      await expect(quota.keepVolume('held', ws('held'), held)).rejects.toThrow(/free blocks could not be cleared, so it is not kept: .*still held by a loop device/);
      expect(await fs.stat(held).catch(() => null)).toBeNull();
      await quota.release('held', ws('held'));
      expect(await fs.lstat(ws('held')).catch(() => null)).toBeNull();
      expect(await slotImages()).toEqual([]);
    } finally {
      ns.kill('SIGKILL');
    }
  });

  it('a volume that cannot be unmounted to be kept stays the task\'s, and its release still frees it', async () => {
    const quota = loop();
    await quota.create('busy', ws('busy'), 24 * MB);
    const mnt = path.dirname(await fs.readlink(ws('busy')));
    // Something still has a file open on the volume: it cannot be unmounted.
    const held = await fs.open(path.join(ws('busy'), 'held'), 'w');
    try {
      await expect(quota.keepVolume('busy', ws('busy'), path.join(dir, 'busy.img'))).rejects.toThrow(/umount/);
      await quota.release('busy', ws('busy'));
    } finally {
      await held.close();
    }
    expect(await isMountPoint(mnt)).toBe(false);
    expect(await slotImages()).toEqual([]);
  });

  it('an executor that starts drops the free volumes of one that stopped, and frees a linked one when it releases that task', async () => {
    const crashed = loop();
    await crashed.create('busy', ws('busy'), 24 * MB);
    await crashed.create('idle', ws('idle'), 24 * MB);
    await crashed.release('idle', ws('idle'));
    await fs.writeFile(path.join(ws('busy'), 'still'), 'here');
    expect(await slotImages()).toHaveLength(2);
    // It stops marking its volumes (it crashed six minutes ago).
    const [alive] = (await fs.readdir(slotsDir())).filter((n) => n.endsWith('.alive'));
    const then = new Date(Date.now() - 6 * 60_000);
    await fs.utimes(path.join(slotsDir(), alive), then, then);
    quotas.splice(quotas.indexOf(crashed), 1);

    // The next executor starts (WorkspaceQuota.detect drops what is unused).
    const next = loop();
    await next.dropUnused();
    // The free one went; the one the running task's workspace links to stays, and so does its data.
    expect(await slotImages()).toHaveLength(1);
    expect(await fs.readFile(path.join(ws('busy'), 'still'), 'utf8')).toBe('here');
    await next.create('new', ws('new'), 24 * MB);
    await next.release('busy', ws('busy'));
    expect(await fs.lstat(ws('busy')).catch(() => null)).toBeNull();
    expect(await slotImages()).toHaveLength(1);
    await next.release('new', ws('new'));
    await next.dropUnused();
    expect(await slotImages()).toEqual([]);
    // The stopped executor's mark went with its last volume.
    expect(await fs.readdir(slotsDir())).toEqual([]);
  });

  it('tasks starting together each get a volume of their own, made or reused', async () => {
    const quota = loop(3);
    const ids = ['c1', 'c2', 'c3'];
    const devOf = async (id: string) => (await fs.stat(ws(id))).dev;
    const rounds: string[][] = [];
    for (let round = 0; round < 2; round++) {
      await Promise.all(ids.map((id) => quota.create(id, ws(id), 24 * MB)));
      expect(new Set(await Promise.all(ids.map(devOf))).size).toBe(3);
      rounds.push(await slotImages());
      await Promise.all(ids.map((id) => quota.release(id, ws(id))));
    }
    // The second round reused the first round's three volumes.
    expect(rounds[0]).toHaveLength(3);
    expect(rounds[1]).toEqual(rounds[0]);
  });

  it('formats a volume ahead: a second task running at once gets it, bounded the same, and it is dropped on shutdown', async () => {
    const volumes = path.join(dir, 'volumes');
    const quota = loop();
    const spares = async () => (await fs.readdir(`${volumes}-spare`).catch(() => [] as string[])).length;
    await quota.create('s1', ws('s1'), 24 * MB);
    for (let i = 0; i < 100 && (await spares()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await spares()).toBe(1);
    // Formatting finishes after the file appears: let it.
    await new Promise((r) => setTimeout(r, 500));
    const [spare] = await fs.readdir(`${volumes}-spare`);
    const spareInode = (await fs.stat(path.join(`${volumes}-spare`, spare))).ino;
    await quota.create('s2', ws('s2'), 24 * MB);
    const inodes = await Promise.all((await slotImages()).map(async (f) => (await fs.stat(path.join(slotsDir(), f))).ino));
    expect(inodes).toContain(spareInode);
    const st = await fs.statfs(ws('s2'));
    expect(Math.abs(st.bavail * st.bsize - 24 * MB)).toBeLessThanOrEqual(1.5 * MB);
    const res = await fill(path.join(ws('s2'), 'big'), 40);
    expect(res.error).toBe('ENOSPC');
    expect(res.written).toBeLessThanOrEqual(25);
    await quota.release('s1', ws('s1'));
    await quota.release('s2', ws('s2'));
    for (let i = 0; i < 100 && (await spares()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    await quota.dropUnused();
    expect(await spares()).toBe(0);
    expect(await slotImages()).toEqual([]);
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

  it('watch sees space reserved with fallocate, in many files each under the quota, at the next cheap check', async () => {
    const quota = new WorkspaceQuota('watch', path.join(dir, 'volumes'), logger);
    expect(quota.pollMs).toBeLessThanOrEqual(250);
    const ws = path.join(dir, 'ws');
    await quota.create('t4', ws, 16 * MB);
    expect(await quota.full(ws, 16 * MB)).toBe(false);
    const before = quota.lastUsage(ws)!;
    expect(before.measures).toBe(1);
    // 8 files of 12 MB: each under the quota (the per-file limit would let them through), 96 MB together.
    await run('python3', ['-c', 'import os,sys\nfor i in range(8):\n  fd=os.open(os.path.join(sys.argv[1],"f%d"%i),os.O_CREAT|os.O_WRONLY)\n  os.posix_fallocate(fd,0,12<<20)\n  os.close(fd)', ws]);
    // The very next check measures (free space dropped by far more than a quarter of the quota) and sees it.
    expect(await quota.full(ws, 16 * MB)).toBe(true);
    const after = quota.lastUsage(ws)!;
    expect(after.measures).toBe(2);
    expect(after.usedBytes).toBeGreaterThanOrEqual(96 * MB);
    await quota.release('t4', ws);
    expect(quota.lastUsage(ws)).toBeNull();
  });

  it('counts and removes a tree nested deeper than PATH_MAX; watch counts it against the quota', async () => {
    const ws = path.join(dir, 'ws');
    await fs.mkdir(ws);
    await deepTree(ws, 8);
    const quota = new WorkspaceQuota('watch', path.join(dir, 'volumes'), logger);
    expect(await treeBytes(ws)).toBeGreaterThanOrEqual(8 * MB);
    expect(await quota.full(ws, 4 * MB)).toBe(true);
    await removeTree(ws);
    await expect(fs.lstat(ws)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a non-root remover removes a deep tree of mode-000 folders and read-only files it owns', async () => {
    await fs.chmod(dir, 0o755);
    // The user's own folder, the workspace in it, all made by that user.
    const home = path.join(dir, 'home');
    await fs.mkdir(home);
    await fs.chown(home, NOBODY, NOBODY);
    const ws = path.join(home, 'ws');
    await run('mkdir', [ws], { uid: NOBODY, gid: NOBODY });
    await deepTree(ws, 1, NOBODY);
    await fs.chmod(ws, 0o000);
    const js = await compiledRemoveTree(path.join(dir, 'js'));
    // Node's own rm, as that user, cannot (EACCES on the closed folders, or ENAMETOOLONG).
    const old = await asNobody(`require('fs').promises.rm(${JSON.stringify(ws)}, { recursive: true, force: true })`);
    expect(old.code).not.toBe(0);
    const res = await asNobody(`require(${JSON.stringify(js)}).removeTree(${JSON.stringify(ws)})`);
    expect(res).toEqual({ code: 0, stderr: '' });
    await expect(fs.lstat(ws)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('removeTree never crosses into a filesystem mounted inside, and says so; a missing tree is no error', async () => {
    const ws = path.join(dir, 'ws');
    const inner = path.join(ws, 'vol');
    await fs.mkdir(inner, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', inner]);
    try {
      await fs.writeFile(path.join(inner, 'keep'), 'x');
      await expect(removeTree(ws)).rejects.toThrow(ws);
      expect(await fs.readFile(path.join(inner, 'keep'), 'utf8')).toBe('x');
      await expect(removeTree(inner)).rejects.toThrow(/mount point/);
    } finally {
      await run('umount', [inner]);
    }
    await removeTree(ws);
    await removeTree(ws);
    await expect(fs.lstat(ws)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

/**
 * Builds, under `root`, 40 folders of 200-character names one in another (8 kB of path,
 * twice PATH_MAX) with a `mb` MB file at the bottom, a read-only file and mode-000 folders
 * (one holding a file), as a task would: relative mkdir and cd.
 */
async function deepTree(root: string, mb: number, uid?: number): Promise<void> {
  const script = [
    'set -e',
    'cd "$1"',
    'n=$(printf "d%.0s" $(seq 1 200))',
    'for i in $(seq 1 40); do mkdir "$n"; cd "$n"; done',
    'head -c $(($2 * 1048576)) /dev/urandom > big',
    'echo ro > ro; chmod 444 ro',
    'mkdir -p closed/inner; echo x > closed/inner/f; chmod 000 closed/inner closed',
  ].join('\n');
  await run('bash', ['-c', script, 'deep', root, String(mb)], uid === undefined ? {} : { uid, gid: uid });
}

/** remove-tree.ts as plain JavaScript another user's node can load, in `out` (made readable to all). */
async function compiledRemoveTree(out: string): Promise<string> {
  await fs.mkdir(out, { recursive: true, mode: 0o755 });
  const src = path.join(__dirname, '../../apps/executor/src/workspace/remove-tree.ts');
  const errors = path.join(__dirname, '../../libs/shared/src/util/errors.ts');
  const compile = async (file: string) =>
    transformSync(await fs.readFile(file, 'utf8'), { filename: file, jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }).code;
  await fs.writeFile(path.join(out, 'errors.js'), await compile(errors), { mode: 0o644 });
  await fs.writeFile(path.join(out, 'remove-tree.js'), (await compile(src)).replace('@hivemind/shared/util/errors', './errors'), { mode: 0o644 });
  return path.join(out, 'remove-tree.js');
}

/** Runs a promise-returning expression in node as uid/gid 65534: its exit code and complaints. */
async function asNobody(expr: string): Promise<{ code: number; stderr: string }> {
  const code = `${expr}.then(() => process.exit(0), (e) => { process.stderr.write(String(e && e.message)); process.exit(1); })`;
  try {
    await run(process.execPath, ['-e', code], { uid: NOBODY, gid: NOBODY, cwd: '/' });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}
