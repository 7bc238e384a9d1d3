import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VolumeTool, VolumeToolError, VolumeTools } from './volume-tools';

/** Real tools through real helper shells (mkfs.ext4 needs no root; a FIFO makes it hang). */
describe('VolumeTools', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-volume-tools-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const image = async (name: string) => {
    const file = path.join(dir, name);
    const fh = await fs.open(file, 'w');
    await fh.truncate(16 * 1024 * 1024);
    await fh.close();
    return file;
  };
  const isExt4 = async (file: string) => {
    const fh = await fs.open(file, 'r');
    try {
      const b = Buffer.alloc(2);
      await fh.read(b, 0, 2, 1024 + 0x38);
      return b.readUInt16LE(0) === 0xef53;
    } finally {
      await fh.close();
    }
  };
  const mkfs = (file: string) => ['-q', '-F', '-m', '0', file];
  /** Processes whose command line names `needle` (what a killed helper must not leave). */
  const processesNaming = async (needle: string) => {
    const found: string[] = [];
    for (const pid of (await fs.readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
      const cmd = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmd.includes(needle)) found.push(pid);
    }
    return found;
  };

  it('runs a tool and waits for it to finish', async () => {
    const tools = new VolumeTools(2);
    const file = await image('a.img');
    await tools.run('mkfs.ext4', mkfs(file), 30_000);
    expect(await isExt4(file)).toBe(true);
  });

  it('runs overlapping commands on up to `max` helpers, queuing the rest', async () => {
    const tools = new VolumeTools(2);
    const files = await Promise.all(['a', 'b', 'c', 'd'].map((n) => image(`${n}.img`)));
    await Promise.all(files.map((f) => tools.run('mkfs.ext4', mkfs(f), 30_000)));
    for (const f of files) expect(await isExt4(f)).toBe(true);
  });

  it('rejects a failing tool with its exit code and what it printed', async () => {
    const tools = new VolumeTools(1);
    const notMounted = path.join(dir, 'not-mounted');
    await fs.mkdir(notMounted);
    const err = await tools.run('umount', [notMounted], 30_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeToolError);
    expect((err as VolumeToolError).exitCode).not.toBe(0);
    expect((err as VolumeToolError).stderr).toContain(notMounted);
    // The helper goes on serving.
    const file = await image('after.img');
    await tools.run('mkfs.ext4', mkfs(file), 30_000);
    expect(await isExt4(file)).toBe(true);
  });

  it('kills a tool past its time limit, with its helper, and serves the next command on a fresh one', async () => {
    const tools = new VolumeTools(1);
    const fifo = path.join(dir, 'never-opened');
    execFileSync('mkfifo', [fifo]);
    await expect(tools.run('mkfs.ext4', mkfs(fifo), 500)).rejects.toThrow('mkfs.ext4 did not finish within 1 s');
    // SIGKILL to the helper's process group: the hung mkfs goes too.
    for (let i = 0; i < 50 && (await processesNaming(fifo)).length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await processesNaming(fifo)).toEqual([]);
    const file = await image('next.img');
    await tools.run('mkfs.ext4', mkfs(file), 30_000);
    expect(await isExt4(file)).toBe(true);
  });

  it('refuses what is not a volume tool, and arguments it could not pass whole, without running anything', async () => {
    const tools = new VolumeTools(1);
    await expect(tools.run('rm' as VolumeTool, ['-rf', dir], 1000)).rejects.toThrow('not a volume tool: rm');
    await expect(tools.run('umount', [`${dir}\tother`], 1000)).rejects.toThrow('holds a tab or a line break');
    await expect(tools.run('umount', [''], 1000)).rejects.toThrow('an argument is empty');
    expect((await fs.stat(dir)).isDirectory()).toBe(true);
  });

  it('removes a tree in a helper, whatever its modes, never following a link out of it', async () => {
    const tools = new VolumeTools(1);
    const outside = path.join(dir, 'outside');
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'keep'), 'x');
    const tree = path.join(dir, 'tree');
    await fs.mkdir(path.join(tree, 'a', 'b'), { recursive: true });
    await fs.writeFile(path.join(tree, 'a', 'b', 'f'), 'y');
    await fs.symlink(outside, path.join(tree, 'a', 'link'));
    await fs.chmod(path.join(tree, 'a', 'b'), 0);
    await tools.remove(tree, 30_000);
    expect(await fs.lstat(tree).catch(() => null)).toBeNull();
    expect(await fs.readFile(path.join(outside, 'keep'), 'utf8')).toBe('x');
    await expect(tools.remove('relative/tree', 1000)).rejects.toThrow('not an absolute path');
  });

  it('passes arguments with spaces and shell characters as they are', async () => {
    const tools = new VolumeTools(1);
    const file = await image('a b $(touch pwned) `x`;*.img');
    await tools.run('mkfs.ext4', mkfs(file), 30_000);
    expect(await isExt4(file)).toBe(true);
    expect(await fs.readdir(dir)).toEqual(['a b $(touch pwned) `x`;*.img']);
  });
});
