import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { Stack, waitFor } from '../support/stack';
import { unzip, UnzippedEntry } from '../support/unzip';
import { makeZip } from '../support/zips';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const IMAGE = 'hivemind/task-runtime:latest';
/** In the index URL the node is configured with: it must show up nowhere a task or its owner can read. */
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;

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
 * A source distribution whose in-tree build backend (task-supplied code, needing no
 * build dependency) connects to `host:port` as soon as pip asks it for anything.
 */
async function hostileSdist(dir: string, host: string, port: number): Promise<string> {
  const src = path.join(dir, 'sdist-src', 'hmsdist-1.0');
  await fs.mkdir(src, { recursive: true });
  await fs.writeFile(path.join(src, 'PKG-INFO'), 'Metadata-Version: 2.1\nName: hmsdist\nVersion: 1.0\n');
  await fs.writeFile(path.join(src, 'pyproject.toml'), '[build-system]\nrequires = []\nbuild-backend = "hm_backend"\nbackend-path = ["."]\n');
  await fs.writeFile(
    path.join(src, 'hm_backend.py'),
    `import socket\ntry:\n    socket.create_connection((${JSON.stringify(host)}, ${port}), timeout=5).close()\nexcept OSError:\n    pass\nraise SystemExit("hmsdist: no build here")\n`,
  );
  const name = 'hmsdist-1.0.tar.gz';
  await promisify(execFile)('tar', ['-czf', path.join(dir, 'files', name), '-C', path.dirname(src), 'hmsdist-1.0']);
  return name;
}

/** Counts TCP connections: what the install step reaches that it should not. */
class Probe {
  private server = net.createServer((s) => {
    this.connections++;
    s.destroy();
  });
  connections = 0;
  port = 0;

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '0.0.0.0', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** What Docker was asked to run for a task's install step, seen as each container is created. */
async function watchInstall(taskId: string) {
  const seen: { cmd: string[]; env: string[]; networkMode: string }[] = [];
  const events = (await docker.getEvents({ filters: { type: ['container'], event: ['create'], container: [`hivemind-install-${taskId}`] } })) as NodeJS.ReadableStream & { destroy(): void };
  const inspections: Promise<void>[] = [];
  events.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      const id = (JSON.parse(line) as { id: string }).id;
      inspections.push(
        docker
          .getContainer(id)
          .inspect()
          .then((i) => void seen.push({ cmd: [i.Path, ...i.Args], env: i.Config.Env ?? [], networkMode: i.HostConfig.NetworkMode ?? '' }))
          .catch(() => undefined),
      );
    }
  });
  return {
    seen,
    stop: async () => {
      events.destroy();
      await Promise.all(inspections);
    },
  };
}

/**
 * requirements.txt through the real services: the task's file checked (requirements by
 * name only), wheels downloaded with network from a PEP 503 index the test serves (PyPI
 * is not reachable here), credentials by environment only, installed without network;
 * then the task runs without network and imports them. A probe on the install network
 * counts every connection a hostile requirements.txt could make.
 */
describe('requirements.txt', () => {
  let stack: Stack;
  let pool: PoolClient;
  let index: Docker.Container;
  let indexIp: string;
  let gateway: string;
  let dir: string;
  let token: string;
  const probe = new Probe();
  // A network of the test's own (the install step's INSTALL_NETWORK), rather than the
  // default bridge, which other work on this machine may reconfigure.
  const network = `hm-reqs-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    await docker.createNetwork({ Name: network, Driver: 'bridge' });
    gateway = ((await docker.getNetwork(network).inspect()) as { IPAM: { Config: { Gateway: string }[] } }).IPAM.Config[0].Gateway;
    await probe.listen();
    // The index: static PEP 503 pages served from a container on that network,
    // where the install step's container can reach it.
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-pypi-'));
    const wheel = await tinyWheel();
    await fs.mkdir(path.join(dir, 'files'));
    await fs.writeFile(path.join(dir, 'files', wheel.name), wheel.data);
    const sdist = await hostileSdist(dir, gateway, probe.port);
    const project = async (name: string, file: string) => {
      const sha = createHash('sha256').update(await fs.readFile(path.join(dir, 'files', file))).digest('hex');
      await fs.mkdir(path.join(dir, 'simple', name), { recursive: true });
      await fs.writeFile(path.join(dir, 'simple', name, 'index.html'), `<!DOCTYPE html><html><body><a href="../../files/${file}#sha256=${sha}">${file}</a></body></html>\n`);
    };
    await project('hmdemo', wheel.name);
    await project('hmsdist', sdist);
    await fs.writeFile(path.join(dir, 'simple/index.html'), '<!DOCTYPE html><html><body><a href="hmdemo/">hmdemo</a><a href="hmsdist/">hmsdist</a></body></html>\n');
    await promisify(execFile)('chmod', ['-R', 'a+rX', dir]);
    index = await docker.createContainer({
      Image: IMAGE,
      name: `hm-pypi-${randomBytes(4).toString('hex')}`,
      Cmd: ['python3', '-m', 'http.server', '8000', '--directory', '/srv'],
      User: '10001:10001',
      HostConfig: { NetworkMode: network, AutoRemove: true, Binds: [`${dir}:/srv:ro`] },
    });
    await index.start();
    indexIp = (await index.inspect()).NetworkSettings.Networks[network].IPAddress;

    // The probe must be reachable from the install network, or its zero would prove nothing.
    const control = await docker.createContainer({
      Image: IMAGE,
      Cmd: ['python3', '-c', `import socket; socket.create_connection(("${gateway}", ${probe.port}), timeout=10).close()`],
      User: '10001:10001',
      HostConfig: { NetworkMode: network },
    });
    try {
      await control.start();
      expect((await control.wait()).StatusCode).toBe(0);
    } finally {
      await control.remove({ force: true });
    }
    await waitFor('the control connection at the probe', async () => probe.connections === 1);
    probe.connections = 0;

    stack = await Stack.create('reqs', {
      PIP_INDEX_URL: `http://hm-user:${PASSWORD}@${indexIp}:8000/simple`,
      PIP_TRUSTED_HOST: indexIp,
      INSTALL_NETWORK: network,
      LOG_LEVEL: 'info',
    });
    await stack.startAll();
    token = (await fs.readFile(stack.env.DASHBOARD_TOKEN_FILE, 'utf8')).trim();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
    await index?.remove({ force: true }).catch(() => undefined);
    await docker.getNetwork(network).remove().catch(() => undefined);
    await probe.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
    if (stack) await fs.rm(stack.dir, { recursive: true, force: true });
  });

  interface Run {
    status: string;
    files: Map<string, UnzippedEntry>;
    exec: string;
    logs: string;
    /** The gateway's history entry (/api/tasks/:id). */
    history: { status: string; reason: string; logsTail?: string };
  }

  async function run(taskId: string, requirements: string, main: string): Promise<Run> {
    const zip = await makeZip([
      { name: 'requirements.txt', content: requirements },
      { name: 'main.py', content: main },
    ]);
    expect((await uploadTask(pool, taskId, zip)).success).toBe(true);
    const info = await waitForStatus(pool, taskId, ['COMPLETED', 'FAILED']).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.logs()}`);
    });
    const files = await waitFor(`the result of ${taskId}`, async () => {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (t) => ({ task_id: taskId, token: t }));
      return res.success ? unzip(Buffer.from(res.result_zip)) : null;
    });
    const history = await waitFor(`${taskId} in the gateway's history`, async () => {
      const res = await fetch(`${stack.gatewayHttp}/api/tasks/${taskId}`, { headers: { Authorization: `Bearer ${token}` } });
      return res.status === 200 ? ((await res.json()) as Run['history']) : null;
    });
    return { status: info.status, files, exec: files.get('execution_log.txt')!.data.toString(), logs: files.get('task_logs.txt')!.data.toString(), history };
  }

  it('installs the wheels offline, the task imports them without network, and the index password shows up nowhere', async () => {
    const main = [
      'import socket, hmdemo',
      'out = [hmdemo.GREETING]',
      'try:',
      `    socket.create_connection(("${indexIp}", 8000), timeout=3)`,
      '    out.append("NETWORK OPEN")',
      'except OSError as e:',
      '    out.append("no network")',
      'open("result/out.txt", "w").write("\\n".join(out))',
      'print("task done")',
    ].join('\n');
    const watch = await watchInstall('reqs-ok');
    const r = await run('reqs-ok', 'hmdemo==1.0\n', main).finally(() => watch.stop());
    expect(r.status).toBe('COMPLETED');
    expect(r.history).toMatchObject({ status: 'Success', reason: 'exited with code 0' });
    expect(r.files.get('result/out.txt')?.data.toString()).toBe('hello from hmdemo 1.0\nno network');
    // The installed packages and the downloaded wheels are not sent back in the result.
    expect([...r.files.keys()].filter((n) => n.startsWith('.hivemind-packages'))).toEqual([]);
    // The install step's container is gone.
    expect(await docker.getContainer('hivemind-install-reqs-ok').inspect().catch(() => null)).toBeNull();

    // Nowhere the owner or the pool can read: the result (every file), the history, the live output.
    for (const [name, entry] of r.files) expect({ name, leaks: entry.data.toString('latin1').includes(PASSWORD) }).toEqual({ name, leaks: false });
    expect(JSON.stringify(r.history)).not.toContain(PASSWORD);
    const poolLog = await waitFor('the task output at the pool', async () => {
      const res = await pool.call(pool.master, pool.master.getTasklog, (t) => ({ task_id: 'reqs-ok', token: t }));
      return res.success && res.log.includes('task done') ? res.log : null;
    });
    expect(poolLog).not.toContain(PASSWORD);
    expect(poolLog).not.toContain('hm-user');

    // Two runs: a download with the network, credentials by environment only; an install without.
    expect(watch.seen.map((s) => s.networkMode)).toEqual([network, 'none']);
    for (const s of watch.seen) expect(s.cmd.join(' ')).not.toContain(PASSWORD);
    expect(watch.seen[0].env).toContain(`PIP_INDEX_URL=http://hm-user:${PASSWORD}@${indexIp}:8000/simple`);
    expect(watch.seen[1].env.join(' ')).not.toContain(PASSWORD);
  });

  it("a requirement with no wheel on the index ends the task Failed, naming it, and the task never runs", async () => {
    const r = await run('reqs-bad', 'hmdemo-missing==9.9\n', 'open("result/ran.txt", "w").write("ran")\n');
    expect(r.status).toBe('COMPLETED'); // the pool's word for "a result came back"
    expect(r.history.status).toBe('Failed');
    expect(r.history.reason).toMatch(/^installing requirements.txt failed: no wheel for "hmdemo-missing==9.9" on the package index [\d.]+:8000/);
    expect(r.files.has('result/ran.txt')).toBe(false);
  });

  // Hostile files: each would have pip reach the probe (the old install step obeyed them all).
  const probeUrl = () => `http://${gateway}:${probe.port}`;
  it.each([
    ['reqs-url', () => `hmdemo @ ${probeUrl()}/hmdemo-1.0-py3-none-any.whl\n`, /line 1 "hmdemo @ http:.*": a direct reference/],
    ['reqs-extra-index', () => `--trusted-host ${gateway}\n--extra-index-url ${probeUrl()}/simple\nhmdemo==1.0\n`, /line 1 "--trusted-host .*": --trusted-host is not allowed.*; line 2 "--extra-index-url .*": --extra-index-url is not allowed/],
    ['reqs-find-links', () => `--trusted-host ${gateway}\n--find-links ${probeUrl()}/\nhmdemo==1.0\n`, /line 2 "--find-links .*": --find-links is not allowed/],
  ])('%s: a requirements.txt that points pip elsewhere is refused, naming the line, and nothing is reached', async (taskId, requirements, why) => {
    probe.connections = 0;
    const r = await run(taskId, requirements(), 'open("result/ran.txt", "w").write("ran")\n');
    expect(probe.connections).toBe(0);
    expect(r.status).toBe('COMPLETED'); // the pool's word for "a result came back"
    expect(r.history.status).toBe('Failed');
    expect(r.history.reason).toMatch(/^requirements.txt refused: /);
    expect(r.history.reason).toMatch(why);
    expect(r.exec).toContain(`Reason: ${r.history.reason}`);
    expect(r.files.has('result/ran.txt')).toBe(false);
    expect(probe.connections).toBe(0);
  });

  it('a package with only a source distribution is refused as having no wheel: its build code never runs', async () => {
    probe.connections = 0;
    const r = await run('reqs-sdist', 'hmsdist==1.0\n', 'open("result/ran.txt", "w").write("ran")\n');
    expect(probe.connections).toBe(0);
    expect(r.status).toBe('COMPLETED'); // the pool's word for "a result came back"
    expect(r.history.reason).toMatch(/^installing requirements.txt failed: no wheel for "hmsdist==1.0" on the package index .*REQUIREMENTS_ALLOW_SDIST=false/);
    expect(r.files.has('result/ran.txt')).toBe(false);
  });

  it("a stop reaches the install step: its container is stopped and removed, and the task ends Stopped", async () => {
    // A frozen index: pip's download hangs on it (for minutes of retries) until stopped.
    await index.pause();
    try {
      const zip = await makeZip([
        { name: 'requirements.txt', content: 'hmdemo==1.0\n' },
        { name: 'main.py', content: 'open("result/ran.txt", "w").write("ran")\n' },
      ]);
      expect((await uploadTask(pool, 'reqs-stop', zip)).success).toBe(true);
      await waitFor('the install step running', async () => (await docker.getContainer('hivemind-install-reqs-stop').inspect().catch(() => null))?.State.Running);
      const stop = await pool.call(pool.master, pool.master.stopTask, (t) => ({ task_id: 'reqs-stop', token: t }));
      expect(stop.success).toBe(true);
      await waitForStatus(pool, 'reqs-stop', ['STOPPED']);
      const history = await waitFor('reqs-stop in the history', async () => {
        const res = await fetch(`${stack.gatewayHttp}/api/tasks/reqs-stop`, { headers: { Authorization: `Bearer ${token}` } });
        return res.status === 200 ? ((await res.json()) as { status: string; reason: string }) : null;
      });
      expect(history).toMatchObject({ status: 'Stopped', reason: expect.stringMatching(/while its requirements were installed$/) });
      expect(await docker.getContainer('hivemind-install-reqs-stop').inspect().catch(() => null)).toBeNull();
    } finally {
      await index.unpause();
    }
  });
});
