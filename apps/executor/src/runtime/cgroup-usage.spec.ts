import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CgroupUsage } from './cgroup-usage';

const ID = 'a'.repeat(64);
const made: string[] = [];
afterAll(() => Promise.all(made.map((d) => fs.rm(d, { recursive: true, force: true }))));

/** A cgroup tree with one container's files, as the daemon lays them out. */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-cgroup-'));
  made.push(root);
  for (const [name, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await fs.writeFile(path.join(root, name), content);
  }
  return root;
}

describe('CgroupUsage', () => {
  it('reads cgroup v2 under the systemd driver (system.slice/docker-<id>.scope)', async () => {
    const dir = `system.slice/docker-${ID}.scope`;
    const root = await tree({
      [`${dir}/cpu.stat`]: 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n',
      [`${dir}/memory.current`]: '10485760\n',
      [`${dir}/memory.stat`]: 'anon 4096\ninactive_file 1048576\nactive_file 0\n',
      [`${dir}/memory.max`]: '268435456\n',
    });
    expect(await new CgroupUsage(root).read(ID)).toEqual({ cpuNs: 1_500_000, memoryBytes: 9 * 1048576, limitBytes: 268435456 });
  });

  it('reads cgroup v1 under the cgroupfs driver (docker/<id>), no limit as null', async () => {
    const root = await tree({
      [`cpu,cpuacct/docker/${ID}/cpuacct.usage`]: '42000000\n',
      [`memory/docker/${ID}/memory.usage_in_bytes`]: '2097152\n',
      [`memory/docker/${ID}/memory.stat`]: 'cache 0\ninactive_file 4096\ntotal_inactive_file 1048576\n',
      [`memory/docker/${ID}/memory.limit_in_bytes`]: '9223372036854771712\n',
    });
    expect(await new CgroupUsage(root).read(ID)).toEqual({ cpuNs: 42_000_000, memoryBytes: 1048576, limitBytes: null });
  });

  it('is null where the files are missing or the id is not a container id', async () => {
    const root = await tree({ [`memory/docker/${ID}/memory.usage_in_bytes`]: '1\n' });
    expect(await new CgroupUsage(root).read(ID)).toBeNull();
    expect(await new CgroupUsage(root).read('../../etc')).toBeNull();
  });
});
