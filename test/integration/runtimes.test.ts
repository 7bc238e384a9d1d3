import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import { DockerRuntime, LABEL_MANAGED, LABEL_TASK } from '../../apps/executor/src/runtime/docker.runtime';
import { bwrapWorks, ProcessRuntime } from '../../apps/executor/src/runtime/process.runtime';
import { RunSpec, TaskRuntime } from '../../apps/executor/src/runtime/task-runtime.port';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const IMAGE = process.env.TASK_IMAGE ?? 'hivemind/task-runtime:latest';

async function workspace(files: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-rt-'));
  await fs.chmod(dir, 0o777);
  for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(dir, name), content, { mode: 0o666 });
  return dir;
}

function spec(taskId: string, ws: string, command: string[], memoryMb = 256): RunSpec {
  return {
    taskId,
    workspace: ws,
    command,
    env: { TASK_ID: taskId, RESULT_DIR: '/workspace/result', HOME: '/tmp' },
    limits: { nanoCpus: 1e9, memoryBytes: memoryMb * 1024 * 1024 },
    labels: { [LABEL_MANAGED]: 'true', [LABEL_TASK]: taskId },
  };
}

async function run(rt: TaskRuntime, s: RunSpec, stopAfterMs?: number, keep = s.taskId === 'rt-exit') {
  let out = '';
  const h = await rt.start(s, (c) => (out += c.toString()));
  if (stopAfterMs !== undefined) setTimeout(() => void h.stop(1), stopAfterMs);
  const exit = await h.done;
  if (!keep) await rt.remove(s.taskId);
  return { exit, out };
}

describe('the Docker runtime (real daemon)', () => {
  const rt = new DockerRuntime(docker, { image: IMAGE, user: '10001:10001', pidsLimit: 64, tmpfsMb: 16 });

  it('captures stdout and stderr, returns the exit code, and keeps the container until removed', async () => {
    const ws = await workspace({ 'a.py': 'import sys\nprint("out")\nprint("err", file=sys.stderr)\nsys.exit(4)' });
    const { exit, out } = await run(rt, spec('rt-exit', ws, ['python3', '-u', 'a.py']));
    expect(exit).toEqual({ exitCode: 4, oomKilled: false });
    expect(out).toContain('out');
    expect(out).toContain('err');
    const left = () => docker.listContainers({ all: true, filters: { label: [`${LABEL_TASK}=rt-exit`] } });
    // Kept so that a successor can adopt it if this executor dies before queueing the result.
    expect((await rt.adopt('rt-exit', 256 << 20, () => undefined))?.done).resolves.toEqual({ exitCode: 4, oomKilled: false });
    expect(await left()).toHaveLength(1);
    await rt.remove('rt-exit');
    expect(await left()).toHaveLength(0);
  });

  it('creates the container hardened', async () => {
    const o = rt.createOptions(spec('rt-opts', '/tmp/x', ['true']));
    expect(o.NetworkDisabled).toBe(true);
    expect(o.User).toBe('10001:10001');
    expect(o.HostConfig).toMatchObject({
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      PidsLimit: 64,
      Memory: 256 * 1024 * 1024,
      MemorySwap: 256 * 1024 * 1024,
      NanoCpus: 1e9,
      Binds: ['/tmp/x:/workspace:rw'],
    });
  });

  it('gives a task exactly its allocated GPUs through DeviceRequests, and none otherwise', () => {
    const o = rt.createOptions({ ...spec('rt-gpu', '/tmp/x', ['true']), gpus: ['GPU-a', 'GPU-b'] });
    expect(o.HostConfig?.DeviceRequests).toEqual([{ Driver: 'nvidia', DeviceIDs: ['GPU-a', 'GPU-b'], Capabilities: [['gpu']] }]);
    expect(rt.createOptions(spec('rt-cpu', '/tmp/x', ['true'])).HostConfig?.DeviceRequests).toBeUndefined();
  });

  it('gives the install step a network, and the task none', () => {
    const net = new DockerRuntime(docker, { image: IMAGE, user: '1:1', pidsLimit: 64, tmpfsMb: 16, installNetwork: 'hm-net' });
    const install = net.createOptions({ ...spec('rt-i', '/tmp/x', ['true']), phase: 'install', network: true, entryKind: 'shell' });
    expect(install.name).toBe('hivemind-install-rt-i');
    expect(install.Image).toBe(IMAGE);
    expect(install.NetworkDisabled).toBe(false);
    expect(install.HostConfig).toMatchObject({ NetworkMode: 'hm-net', CapDrop: ['ALL'], ReadonlyRootfs: true });
    // The install step's offline run (pip install from downloaded wheels) gets none either.
    expect(net.createOptions({ ...spec('rt-i', '/tmp/x', ['true']), phase: 'install' }).HostConfig?.NetworkMode).toBe('none');
    const task = net.createOptions(spec('rt-i', '/tmp/x', ['true']));
    expect(task.name).toBe('hivemind-task-rt-i');
    expect(task.NetworkDisabled).toBe(true);
    expect(task.HostConfig?.NetworkMode).toBe('none');
  });

  it('picks the image by entry point and refuses images off the allowlist', () => {
    const two = new DockerRuntime(docker, { image: 'py:1', shellImage: 'sh:1', user: '1:1', pidsLimit: 64, tmpfsMb: 16 });
    expect(two.createOptions({ ...spec('rt-py', '/tmp/x', ['true']), entryKind: 'python' }).Image).toBe('py:1');
    expect(two.createOptions({ ...spec('rt-sh', '/tmp/x', ['true']), entryKind: 'shell' }).Image).toBe('sh:1');
    const strict = new DockerRuntime(docker, { image: 'py:1', shellImage: 'sh:1', allowedImages: ['py:1'], user: '1:1', pidsLimit: 64, tmpfsMb: 16 });
    expect(() => strict.createOptions({ ...spec('rt-sh', '/tmp/x', ['true']), entryKind: 'shell' })).toThrow(
      "the image sh:1 is not on this node's allowlist (TASK_IMAGE_ALLOWLIST)",
    );
  });

  it('reports a task killed for passing its memory limit as OOM', async () => {
    const ws = await workspace({ 'hog.py': 'x = []\nwhile True:\n    x.append(bytearray(16 * 1024 * 1024))\n' });
    const { exit } = await run(rt, spec('rt-oom', ws, ['python3', 'hog.py'], 64));
    expect(exit.oomKilled).toBe(true);
    expect(exit.exitCode).toBe(137);
  });

  it('stops a task with SIGTERM then SIGKILL after the grace period', async () => {
    const ws = await workspace({ 'stubborn.sh': 'trap "" TERM\nwhile true; do sleep 0.1; done' });
    const t0 = Date.now();
    const { exit } = await run(rt, spec('rt-stop', ws, ['bash', 'stubborn.sh']), 500);
    expect(exit.exitCode).toBe(137);
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  it('measures usage while the task runs', async () => {
    const ws = await workspace({ 'spin.py': 'import time\nt=time.time()\nwhile time.time()-t<3: pass' });
    const h = await rt.start(spec('rt-usage', ws, ['python3', 'spin.py']), () => undefined);
    await h.usage();
    await new Promise((r) => setTimeout(r, 1500));
    const u = await h.usage();
    expect(u!.cpuPercent).toBeGreaterThan(30);
    expect(u!.memoryBytes).toBeGreaterThan(0);
    expect((await h.done).exitCode).toBe(0);
    await rt.remove('rt-usage');
  });
});

describe('the process runtime (no Docker)', () => {
  const rt = new ProcessRuntime();

  it('runs in the workspace with a scrubbed environment', async () => {
    process.env.HIVEMIND_SECRET_CANARY = 'do-not-leak';
    const ws = await workspace({ 'e.py': 'import os\nprint(os.getcwd())\nprint(sorted(os.environ))' });
    const { exit, out } = await run(rt, spec('pr-env', ws, ['python3', '-u', 'e.py']));
    expect(exit.exitCode).toBe(0);
    expect(out).toContain(await fs.realpath(ws));
    expect(out).toContain('TASK_ID');
    expect(out).not.toContain('HIVEMIND_SECRET_CANARY');
  });

  it('kills the whole process group on stop', async () => {
    const ws = await workspace({ 'tree.sh': 'trap "" TERM\n(sleep 300 & wait) &\nwhile true; do sleep 0.1; done' });
    const t0 = Date.now();
    const { exit } = await run(rt, spec('pr-stop', ws, ['bash', 'tree.sh']), 300);
    expect(exit.exitCode).toBe(137);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('the process runtime in bubblewrap', () => {
  const rt = new ProcessRuntime({ sandbox: 'bwrap', user: { uid: 10001, gid: 10001 }, pidsLimit: 64, maxFileBytes: 8 << 20 });

  it('is what the executor picks when bubblewrap is installed (setup installs it)', async () => {
    expect(await bwrapWorks()).toBe(true);
  });

  it('has no network, its own pid namespace, read-only system folders, nothing else of the host, and no capabilities', async () => {
    await fs.writeFile(path.join(os.tmpdir(), 'hm-host-canary'), 'host');
    const probe = [
      'import os, socket',
      'print("uid", os.getuid(), "pid", os.getpid())',
      'print("interfaces", sorted(n for _, n in socket.if_nameindex()))',
      'try:',
      '    socket.create_connection(("1.1.1.1", 53), timeout=2); print("NETWORK OPEN")',
      'except OSError as e:',
      '    print("network closed")',
      'print("processes", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))',
      'for p in ["/usr/hm-probe", "/etc/hm-probe", "hm-ok"]:',
      '    try:',
      '        open(p, "w").write("x"); print("wrote", p)',
      '    except OSError as e:',
      '        print("refused", p, e.errno)',
      'for p in ["/etc/shadow", "/root", "/tmp/hm-host-canary", "/var/run/docker.sock", "/home"]:',
      '    print("exists" if os.path.exists(p) else "absent", p)',
      'print("CapEff", [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0])',
      'try:',
      '    open("big", "wb").write(b"x" * (16 << 20)); print("BIG WRITTEN")',
      'except OSError as e:',
      '    print("big refused", e.errno)',
    ].join('\n');
    const ws = await workspace({ 'p.py': probe });
    const { exit, out } = await run(rt, spec('bw-probe', ws, ['python3', '-u', 'p.py']));
    expect(out).toContain('uid 10001');
    expect(out).toContain("interfaces ['lo']");
    expect(out).toContain('network closed');
    expect(Math.max(...JSON.parse(/processes (\[.*\])/.exec(out)![1]))).toBeLessThan(10);
    expect(out).toMatch(/refused \/usr\/hm-probe (30|13)/);
    expect(out).toContain('refused /etc/hm-probe 30');
    expect(out).toContain('wrote hm-ok');
    for (const p of ['/etc/shadow', '/root', '/tmp/hm-host-canary', '/var/run/docker.sock', '/home']) expect(out).toContain(`absent ${p}`);
    expect(out).toContain('CapEff 0000000000000000');
    // RLIMIT_FSIZE (the workspace quota): the write stops at 8 MB.
    expect(out).not.toContain('BIG WRITTEN');
    expect(exit.exitCode).not.toBeNull();
  });

  it('gives the requirements.txt install step the host network, and only that step', async () => {
    const ws = await workspace({ 'n.py': 'import socket\nprint("interfaces", len(socket.if_nameindex()))' });
    const install = await run(rt, { ...spec('bw-net', ws, ['python3', '-u', 'n.py']), phase: 'install', network: true });
    expect(Number(/interfaces (\d+)/.exec(install.out)![1])).toBeGreaterThan(1);
    const task = await run(rt, spec('bw-net', ws, ['python3', '-u', 'n.py']));
    expect(task.out).toContain('interfaces 1');
  });

  it('is killed as a whole on stop', async () => {
    const ws = await workspace({ 'tree.sh': 'trap "" TERM\n(sleep 300 & wait) &\nwhile true; do sleep 0.1; done' });
    const t0 = Date.now();
    const { exit } = await run(rt, spec('bw-stop', ws, ['bash', 'tree.sh']), 300);
    expect(exit.exitCode).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
