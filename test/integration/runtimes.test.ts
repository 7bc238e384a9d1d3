import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import { DockerRuntime, LABEL_MANAGED, LABEL_TASK } from '../../apps/executor/src/runtime/docker.runtime';
import { ProcessRuntime } from '../../apps/executor/src/runtime/process.runtime';
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
