import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { Stack, waitFor } from '../support/stack';
import { unzip, UnzippedEntry } from '../support/unzip';
import { makeZip } from '../support/zips';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const IMAGE = 'hivemind/task-runtime:latest';

/** A pure-Python wheel built in memory: package `hmdemo` with one constant. */
async function tinyWheel(): Promise<{ name: string; data: Buffer }> {
  const files: Record<string, string> = {
    'hmdemo/__init__.py': 'GREETING = "hello from hmdemo 1.0"\n',
    'hmdemo-1.0.dist-info/METADATA': 'Metadata-Version: 2.1\nName: hmdemo\nVersion: 1.0\nSummary: test package\n',
    'hmdemo-1.0.dist-info/WHEEL': 'Wheel-Version: 1.0\nGenerator: hivemind-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
  };
  const record = Object.entries(files).map(([n, c]) => `${n},sha256=${createHash('sha256').update(c).digest('base64url')},${Buffer.byteLength(c)}`);
  files['hmdemo-1.0.dist-info/RECORD'] = [...record, 'hmdemo-1.0.dist-info/RECORD,,', ''].join('\n');
  return { name: 'hmdemo-1.0-py3-none-any.whl', data: await makeZip(Object.entries(files).map(([name, content]) => ({ name, content }))) };
}

/**
 * requirements.txt through the real services: a separate install step with network
 * against a PEP 503 index the test serves (PyPI is not reachable here), then the task
 * runs without network and imports what was installed.
 */
describe('requirements.txt', () => {
  let stack: Stack;
  let pool: PoolClient;
  let index: Docker.Container;
  let indexIp: string;
  // A network of the test's own (the install step's INSTALL_NETWORK), rather than the
  // default bridge, which other work on this machine may reconfigure.
  const network = `hm-reqs-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    await docker.createNetwork({ Name: network, Driver: 'bridge' });
    // The index: static PEP 503 pages served from a container on that network,
    // where the install step's container can reach it.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-pypi-'));
    const wheel = await tinyWheel();
    const sha = createHash('sha256').update(wheel.data).digest('hex');
    await fs.mkdir(path.join(dir, 'simple/hmdemo'), { recursive: true });
    await fs.mkdir(path.join(dir, 'files'));
    await fs.writeFile(path.join(dir, 'files', wheel.name), wheel.data);
    await fs.writeFile(path.join(dir, 'simple/index.html'), '<!DOCTYPE html><html><body><a href="hmdemo/">hmdemo</a></body></html>\n');
    await fs.writeFile(path.join(dir, 'simple/hmdemo/index.html'), `<!DOCTYPE html><html><body><a href="../../files/${wheel.name}#sha256=${sha}">${wheel.name}</a></body></html>\n`);
    await fs.chmod(dir, 0o755);
    index = await docker.createContainer({
      Image: IMAGE,
      name: `hm-pypi-${randomBytes(4).toString('hex')}`,
      Cmd: ['python3', '-m', 'http.server', '8000', '--directory', '/srv'],
      User: '10001:10001',
      HostConfig: { NetworkMode: network, AutoRemove: true, Binds: [`${dir}:/srv:ro`] },
    });
    await index.start();
    indexIp = (await index.inspect()).NetworkSettings.Networks[network].IPAddress;
    stack = await Stack.create('reqs', {
      PIP_INDEX_URL: `http://${indexIp}:8000/simple`,
      PIP_TRUSTED_HOST: indexIp,
      INSTALL_NETWORK: network,
      LOG_LEVEL: 'info',
    });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
    await index?.remove({ force: true }).catch(() => undefined);
    await docker.getNetwork(network).remove().catch(() => undefined);
  });

  async function run(taskId: string, requirements: string, main: string): Promise<{ files: Map<string, UnzippedEntry>; exec: string; logs: string }> {
    const zip = await makeZip([
      { name: 'requirements.txt', content: requirements },
      { name: 'main.py', content: main },
    ]);
    expect((await uploadTask(pool, taskId, zip)).success).toBe(true);
    await waitForStatus(pool, taskId, ['COMPLETED', 'FAILED']).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.logs()}`);
    });
    const files = await waitFor(`the result of ${taskId}`, async () => {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
      return res.success ? unzip(Buffer.from(res.result_zip)) : null;
    });
    return { files, exec: files.get('execution_log.txt')!.data.toString(), logs: files.get('task_logs.txt')!.data.toString() };
  }

  it('installs the packages with network, then runs the task without network, and it imports them', async () => {
    const main = [
      'import socket, hmdemo',
      'print(hmdemo.GREETING)',
      'try:',
      `    socket.create_connection(("${indexIp}", 8000), timeout=3)`,
      '    print("NETWORK OPEN")',
      'except OSError as e:',
      '    print("no network", e.errno)',
    ].join('\n');
    const r = await run('reqs-ok', 'hmdemo==1.0\n', main);
    expect(r.exec).toContain('Status: Success');
    expect(r.logs).toContain('[hivemind] installing requirements.txt');
    expect(r.logs).toContain('Successfully installed hmdemo-1.0');
    expect(r.logs).toContain('hello from hmdemo 1.0');
    expect(r.logs).toContain('no network');
    expect(r.logs).not.toContain('NETWORK OPEN');
    // The installed packages are not sent back in the result.
    expect([...r.files.keys()].filter((n) => n.startsWith('.hivemind-packages'))).toEqual([]);
    // The install step's container is gone.
    expect(await docker.getContainer('hivemind-install-reqs-ok').inspect().catch(() => null)).toBeNull();
  });

  it("an install failure ends the task Failed with pip's error in the result, and the task never runs", async () => {
    const r = await run('reqs-bad', 'hmdemo-missing==9.9\n', 'print("TASK RAN")\n');
    expect(r.exec).toContain('Status: Failed');
    expect(r.exec).toMatch(/Reason: installing requirements.txt failed \(pip exited with code 1\): ERROR: Could not find a version that satisfies the requirement hmdemo-missing==9.9/);
    expect(r.logs).toContain('ERROR: No matching distribution found for hmdemo-missing==9.9');
    expect(r.logs).not.toContain('TASK RAN');
  });
});
