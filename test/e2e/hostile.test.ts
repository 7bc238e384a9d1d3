import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { executeRequest, ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { Stack, waitFor } from '../support/stack';
import { unzip, UnzippedEntry } from '../support/unzip';
import { makeZip, ZipItem } from '../support/zips';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const IMAGE = 'hivemind/task-runtime:latest';
const PIDS_LIMIT = 64;
const QUOTA_MB = 32;
const MEMORY_MB = 128;

interface Finished {
  files: Map<string, UnzippedEntry>;
  exec: string;
  logs: string;
}

/** Reads one value (cgroup v1 or v2) of a container's cgroup. */
async function cgroupValue(containerId: string, v1: string, file: string, v2file = file): Promise<number> {
  const v1Text = await fs.readFile(`/sys/fs/cgroup/${v1}/docker/${containerId}/${file}`, 'utf8').catch(() => null);
  if (v1Text !== null) return Number(v1Text.trim());
  const v2Text = await fs.readFile(`/sys/fs/cgroup/system.slice/docker-${containerId}.scope/${v2file}`, 'utf8').catch(() => null);
  // cgroup v2 cpu.stat starts "usage_usec N": in ns like cpuacct.usage.
  if (v2Text !== null) return v2file === 'cpu.stat' ? Number(v2Text.split(/\s+/)[1]) * 1000 : Number(v2Text.trim());
  throw new Error(`no cgroup file ${file} for ${containerId}`);
}

async function containerOf(taskId: string): Promise<string> {
  return waitFor(`the container of ${taskId}`, async () => {
    const info = await docker.getContainer(`hivemind-task-${taskId}`).inspect().catch(() => null);
    return info?.State.Running ? info.Id : null;
  }, 60_000, 100);
}

function rssMb(pid: number): number {
  try {
    const status = execFileSync('cat', [`/proc/${pid}/status`]).toString();
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/**
 * Hostile tasks through the real stack (devpool, gateway, executor, monitor as
 * processes; real Docker): each row of the sandbox table, asserting what a volunteer
 * cares about and what the result zip says.
 */
describe('hostile tasks', () => {
  let stack: Stack;
  let pool: PoolClient;
  let bridgeGateway: string;
  let listener: net.Server;
  let listenerPort: number;
  let connections = 0;
  let peerIp: string;
  const network = `hm-hostile-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    stack = await Stack.create('hostile', {
      MAX_CONCURRENT_TASKS: '4',
      TASK_PIDS_LIMIT: String(PIDS_LIMIT),
      TASK_DEFAULT_MEMORY_MB: String(MEMORY_MB),
      TASK_DEFAULT_CPUS: '1',
      WORKSPACE_QUOTA_MB: String(QUOTA_MB),
      STOP_GRACE_PERIOD: '1',
      TASK_TIMEOUT: '120',
      LOG_LEVEL: 'info',
    });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
    listener = net.createServer((s) => {
      connections += 1;
      s.end('hello\n');
    });
    await new Promise<void>((resolve) => listener.listen(0, '0.0.0.0', resolve));
    listenerPort = (listener.address() as net.AddressInfo).port;
    // A service on a Docker bridge network (the test's own) that ordinary containers can reach.
    await docker.createNetwork({ Name: network, Driver: 'bridge' });
    // The host's own address on that bridge.
    bridgeGateway = (await docker.getNetwork(network).inspect()).IPAM?.Config?.[0]?.Gateway ?? '172.17.0.1';
    const peer = await docker.createContainer({
      Image: IMAGE,
      name: `hm-hostile-peer-${randomBytes(4).toString('hex')}`,
      Cmd: ['python3', '-c', 'import socketserver\nclass H(socketserver.BaseRequestHandler):\n    def handle(self): self.request.sendall(b"hello")\nsocketserver.TCPServer(("0.0.0.0", 8080), H).serve_forever()'],
      HostConfig: { NetworkMode: network, AutoRemove: true },
    });
    await peer.start();
    peerIp = (await peer.inspect()).NetworkSettings.Networks[network].IPAddress;
    peerContainer = peer;
  });

  let peerContainer: Docker.Container | null = null;

  afterAll(async () => {
    await peerContainer?.remove({ force: true }).catch(() => undefined);
    await docker.getNetwork(network).remove().catch(() => undefined);
    listener?.close();
    pool?.close();
    await stack?.stopAll();
  });

  async function start(taskId: string, items: ZipItem[], ask: { memoryGb?: number; cpuScore?: number } = {}): Promise<void> {
    expect(await uploadTask(pool, taskId, await makeZip(items), ask)).toEqual({ success: true, message: `task ${taskId} uploaded` });
  }

  async function finished(taskId: string, timeoutMs = 120_000): Promise<Finished> {
    await waitForStatus(pool, taskId, ['COMPLETED', 'FAILED', 'STOPPED'], timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.logs()}`);
    });
    const files = await waitFor(`the result of ${taskId}`, async () => {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
      return res.success ? unzip(Buffer.from(res.result_zip)) : null;
    });
    return { files, exec: files.get('execution_log.txt')!.data.toString(), logs: files.get('task_logs.txt')!.data.toString() };
  }

  async function runTask(taskId: string, items: ZipItem[]): Promise<Finished> {
    await start(taskId, items);
    return finished(taskId);
  }

  it('a fork bomb is held at the pids limit; the host can still fork, and a stop ends it', async () => {
    const bomb = [
      'echo "bomb starting"',
      'bomb() { bomb | bomb & }',
      'bomb',
      // exec, not fork: the main process stays alive while the bomb fills the pids limit.
      'exec python3 -c "import time; print(\'main alive\', flush=True); time.sleep(300)"',
    ].join('\n');
    await start('bomb', [{ name: 'run.sh', content: bomb }]);
    const id = await containerOf('bomb');
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      peak = Math.max(peak, await cgroupValue(id, 'pids', 'pids.current'));
      // The host (this test's own machine) can still start processes.
      expect(execFileSync('true').length).toBe(0);
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(peak).toBeGreaterThan(PIDS_LIMIT / 2);
    expect(peak).toBeLessThanOrEqual(PIDS_LIMIT);
    expect(await cgroupValue(id, 'pids', 'pids.max')).toBe(PIDS_LIMIT);
    const stop = await pool.call(pool.master, pool.master.stopTask, (token) => ({ task_id: 'bomb', token }));
    expect(stop.success).toBe(true);
    const r = await finished('bomb');
    expect(r.exec).toContain('Status: Stopped');
    expect(r.files.get('task_stopped.txt')!.data.toString()).toContain('Task bomb was stopped');
    expect(r.logs).toContain('bomb starting');
  });

  it('a task past its memory limit is killed and its result says "out of memory"', async () => {
    const r = await runTask('oom', [{ name: 'main.py', content: 'print("eating", flush=True)\nx = []\nwhile True:\n    x.append(bytearray(16 * 1024 * 1024))\n' }]);
    expect(r.exec).toContain('Status: Failed');
    expect(r.exec).toContain(`Reason: out of memory: the task passed its limit of ${MEMORY_MB} MB and was killed`);
    expect(r.logs).toContain('eating');
  });

  it('a task spinning every core is held to its CPU share, and a second task still makes progress', async () => {
    const spin = [
      'import multiprocessing, time',
      'def burn():',
      '    t = time.time()',
      '    while time.time() - t < 12: pass',
      'ps = [multiprocessing.Process(target=burn) for _ in range(4)]',
      '[p.start() for p in ps]',
      'print("spinning", flush=True)',
      '[p.join() for p in ps]',
    ].join('\n');
    const steady = 'import time\nn = 0\nt = time.time()\nwhile time.time() - t < 4:\n    n += 1\nprint("progress", n)\n';
    await start('spin', [{ name: 'main.py', content: spin }]);
    const id = await containerOf('spin');
    await new Promise((r) => setTimeout(r, 1500));
    await start('steady', [{ name: 'main.py', content: steady }]);
    const u0 = await cgroupValue(id, 'cpuacct', 'cpuacct.usage', 'cpu.stat');
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, 4000));
    const u1 = await cgroupValue(id, 'cpuacct', 'cpuacct.usage', 'cpu.stat');
    const cores = (u1 - u0) / Number(process.hrtime.bigint() - t0);
    // One CPU (TASK_DEFAULT_CPUS) of the machine's cores, whatever the task spawns.
    expect(cores).toBeLessThan(1.15);
    expect(cores).toBeGreaterThan(0.2);
    const steadyResult = await finished('steady');
    expect(steadyResult.exec).toContain('Status: Success');
    expect(Number(/progress (\d+)/.exec(steadyResult.logs)![1])).toBeGreaterThan(10_000);
    const spinResult = await finished('spin');
    expect(spinResult.exec).toContain('Status: Success');
  });

  it('cannot open a TCP connection out, not even to a container or the host on the Docker bridge', async () => {
    const probe = [
      'import socket',
      `for host, port in [("${peerIp}", 8080), ("${bridgeGateway}", ${listenerPort}), ("1.1.1.1", 443), ("8.8.8.8", 53)]:`,
      '    try:',
      '        socket.create_connection((host, port), timeout=3).recv(10)',
      '        print("CONNECTED", host)',
      '    except OSError as e:',
      '        print("blocked", host, e.errno)',
    ].join('\n');
    // An ordinary bridge container does reach the peer: the test can fail.
    const open = execFileSync('docker', ['run', '--rm', '--network', network, IMAGE, 'python3', '-c',
      `import socket\nsocket.create_connection(("${peerIp}", 8080), timeout=3).recv(10)\nprint("CONNECTED")`]).toString();
    expect(open).toContain('CONNECTED');
    const before = connections;
    const r = await runTask('tcp', [{ name: 'main.py', content: probe }]);
    expect(r.exec).toContain('Status: Success');
    expect(r.logs).not.toContain('CONNECTED');
    expect(r.logs).toContain(`blocked ${peerIp}`);
    expect(r.logs).toContain(`blocked ${bridgeGateway}`);
    expect(r.logs).toContain('blocked 1.1.1.1');
    expect(connections).toBe(before);
  });

  it('cannot resolve a DNS name', async () => {
    const probe = [
      'import socket',
      'for name in ["example.com", "pypi.org", "host.docker.internal"]:',
      '    try:',
      '        print("RESOLVED", name, socket.getaddrinfo(name, 80)[0][4])',
      '    except OSError as e:',
      '        print("no dns", name, type(e).__name__)',
    ].join('\n');
    const r = await runTask('dns', [{ name: 'main.py', content: probe }]);
    expect(r.logs).not.toContain('RESOLVED');
    expect(r.logs).toContain('no dns example.com gaierror');
    expect(r.logs).toContain('no dns pypi.org gaierror');
  });

  it('cannot write to / or /etc (or anywhere but its workspace and /tmp)', async () => {
    const probe = [
      'import os',
      'for d in ["/", "/etc", "/usr/bin", "/root", "/var", "/workspace", "/tmp"]:',
      '    try:',
      '        with open(os.path.join(d, "hm-probe"), "w") as f: f.write("x")',
      '        print("WROTE", d)',
      '    except OSError as e:',
      '        print("refused", d, e.errno)',
    ].join('\n');
    const r = await runTask('writes', [{ name: 'main.py', content: probe }]);
    for (const d of ['/', '/etc', '/usr/bin', '/root', '/var']) expect(r.logs).toMatch(new RegExp(`refused ${d} (30|13)\\b`));
    expect(r.logs).toContain('WROTE /workspace');
    expect(r.logs).toContain('WROTE /tmp');
    expect(r.files.has('hm-probe')).toBe(true);
  });

  it('writing more than the workspace quota is stopped at the quota with a clear message', async () => {
    const hog = [
      'import sys',
      'n = 0',
      'with open("/workspace/hog.bin", "wb") as f:',
      '    while True:',
      '        try:',
      '            f.write(b"\\0" * (1 << 20)); f.flush(); n += 1',
      '        except OSError as e:',
      '            print("write failed after", n, "MB:", e.strerror, flush=True)',
      '            import time; time.sleep(60)',
      '        if n % 8 == 0: print("wrote", n, "MB", flush=True)',
    ].join('\n');
    const r = await runTask('quota', [{ name: 'main.py', content: hog }]);
    expect(r.exec).toContain('Status: Failed');
    expect(r.exec).toContain(`Reason: workspace quota exceeded: the task wrote more than its ${QUOTA_MB} MB workspace quota`);
    const written = Number(/write failed after (\d+) MB/.exec(r.logs)?.[1] ?? /wrote (\d+) MB(?![\s\S]*wrote)/.exec(r.logs)![1]);
    expect(written).toBeGreaterThanOrEqual(QUOTA_MB - 4);
    expect(written).toBeLessThanOrEqual(QUOTA_MB + 4);
    // Nothing of it is left on the host once the result is in.
    await waitFor('the quota task cleaned up', async () =>
      (await fs.readdir(path.join(stack.env.WORK_DIR, 'workspaces')).catch(() => [] as string[])).includes('quota') ? null : true,
    );
  });

  it('a task whose files alone exceed the workspace quota is refused at ExecuteTask', async () => {
    const worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
    try {
      const zip = await makeZip([{ name: 'run.py', content: 'print(1)' }, { name: 'data.bin', content: Buffer.alloc((QUOTA_MB + 8) << 20) }]);
      const res = await unary(worker, worker.executeTask, executeRequest({ task_id: 'too-big', task_zip: zip }));
      expect(res).toEqual({ success: false, message: `the task unpacks to ${QUOTA_MB + 8} MB; this node's workspace quota is ${QUOTA_MB} MB (WORKSPACE_QUOTA_MB)` });
    } finally {
      worker.close();
    }
  });

  it("cannot read another task's workspace or see its processes", async () => {
    const secret = `SECRET-${randomBytes(8).toString('hex')}`;
    await start('victim', [{ name: 'main.py', content: `import time\nopen("/workspace/secret.txt", "w").write("${secret}")\nprint("victim ready", flush=True)\ntime.sleep(10)\n` }]);
    await containerOf('victim');
    const victimHost = path.join(stack.env.WORK_DIR, 'workspaces', 'victim', 'secret.txt');
    await waitFor('the victim wrote its secret', async () => (await fs.readFile(victimHost, 'utf8').catch(() => '')) === secret);
    const snoop = [
      'import os, glob',
      `for p in ["${victimHost}", "/workspace/../victim/secret.txt", "/proc/1/root/workspace/secret.txt"]:`,
      '    try:',
      '        print("READ", p, open(p).read())',
      '    except OSError as e:',
      '        print("refused", p, e.errno)',
      'found = []',
      'for root, dirs, files in os.walk("/"):',
      '    if root.startswith(("/proc", "/sys")): dirs[:] = []; continue',
      '    found += [os.path.join(root, f) for f in files if f == "secret.txt"]',
      'print("found", found)',
      'procs = [open(f"/proc/{p}/cmdline", "rb").read() for p in os.listdir("/proc") if p.isdigit()]',
      'print("processes", len(procs), "victim seen" if any(b"victim ready" in c or b"secret.txt" in c for c in procs) else "victim unseen")',
    ].join('\n');
    const r = await runTask('snoop', [{ name: 'main.py', content: snoop }]);
    expect(r.exec).toContain('Status: Success');
    expect(r.logs).not.toContain(secret);
    expect(r.logs).not.toContain('READ');
    expect(r.logs).toContain('found []');
    expect(r.logs).toContain('victim unseen');
    const v = await finished('victim');
    expect(v.files.get('secret.txt')!.data.toString()).toBe(secret);
  });

  it("cannot read the host's files or reach the Docker socket", async () => {
    const canary = `hm-canary-${randomBytes(6).toString('hex')}`;
    await fs.writeFile(path.join(os.tmpdir(), canary), 'host secret');
    const probe = [
      'import os, socket',
      'for p in ["/var/run/docker.sock", "/run/docker.sock"]:',
      '    try:',
      '        s = socket.socket(socket.AF_UNIX); s.connect(p); print("DOCKER SOCKET", p)',
      '    except OSError as e:',
      '        print("no socket", p, e.errno)',
      `for p in ["${stack.env.WORK_DIR}", "${process.cwd()}/package.json", "/etc/shadow", "/proc/kcore", "/dev/mem"]:`,
      '    try:',
      '        open(p, "rb").read(16); print("READ", p)',
      '    except OSError as e:',
      '        print("refused", p, e.errno)',
      'hits = []',
      'for root, dirs, files in os.walk("/"):',
      '    if root.startswith(("/proc", "/sys")): dirs[:] = []; continue',
      `    hits += [os.path.join(root, f) for f in files if f == "${canary}"]`,
      'print("canary", hits)',
      'print("hostname", socket.gethostname())',
    ].join('\n');
    const r = await runTask('hostfs', [{ name: 'main.py', content: probe }]);
    expect(r.logs).not.toContain('DOCKER SOCKET');
    expect(r.logs).toContain('no socket /var/run/docker.sock 2');
    expect(r.logs).not.toContain('READ');
    expect(r.logs).toContain('canary []');
    expect(r.logs).not.toContain(`hostname ${os.hostname()}\n`);
  });

  it('gets nothing from setuid or capabilities', async () => {
    const probe = [
      'import os, socket, subprocess',
      'status = open("/proc/self/status").read()',
      'for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"]:',
      '    print(k, [l.split()[1] for l in status.splitlines() if l.startswith(k + ":")][0])',
      'def attempt(name, fn):',
      '    try:',
      '        fn(); print("GAINED", name)',
      '    except (OSError, PermissionError) as e:',
      '        print("denied", name, e.errno)',
      'open("/workspace/f", "w").close()',
      'attempt("setuid", lambda: os.setuid(0))',
      'attempt("setgid", lambda: os.setgid(0))',
      'attempt("chown", lambda: os.chown("/workspace/f", 0, 0))',
      'attempt("raw socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))',
      'attempt("mknod", lambda: os.mknod("/tmp/dev", 0o600 | 0o020000, os.makedev(1, 3)))',
      'attempt("chroot", lambda: os.chroot("/tmp"))',
      'def unshare():',
      '    r = subprocess.run(["unshare", "-r", "id", "-u"], capture_output=True, text=True)',
      '    if r.returncode != 0: raise PermissionError(1, r.stderr.strip())',
      'attempt("user namespace", unshare)',
      'setuid = subprocess.run(["find", "/", "-xdev", "-perm", "-4000", "-type", "f"], capture_output=True, text=True).stdout.split()',
      'print("setuid binaries", len(setuid))',
      'for b in setuid:',
      '    r = subprocess.run([b, "-c", "id -u"] if b.endswith("/su") else [b, "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=10)',
      '    print("ran", b, "euid-0" if r.stdout.strip().splitlines()[:1] == ["0"] else "no root")',
      'print("id", os.getuid(), os.geteuid(), os.getgid())',
      'ws = [l.split() for l in open("/proc/self/mountinfo") if l.split()[4] == "/workspace"][0]',
      'print("workspace mount", ",".join(sorted(set(ws[5].split(",")))), ws[ws.index("-") + 1])',
    ].join('\n');
    const r = await runTask('caps', [{ name: 'main.py', content: probe }]);
    // The workspace: its own ext4 volume (loop quota, as root here), mounted nosuid and nodev.
    expect(r.logs).toMatch(/workspace mount \S*nodev\S*,nosuid\S* ext4/);
    for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(r.logs).toContain(`${k} 0000000000000000`);
    expect(r.logs).toContain('NoNewPrivs 1');
    expect(r.logs).not.toContain('GAINED');
    for (const a of ['setuid', 'setgid', 'chown', 'raw socket', 'mknod', 'chroot', 'user namespace']) expect(r.logs).toContain(`denied ${a}`);
    expect(Number(/setuid binaries (\d+)/.exec(r.logs)![1])).toBeGreaterThan(0);
    expect(r.logs).not.toContain('euid-0');
    expect(r.logs).toContain('id 10001 10001 10001');
  });

  it('printing 1 GB to stdout keeps every service under 250 MB RSS; the pool gets a bounded tail; task_logs.txt keeps head, marker and tail', async () => {
    const flood = [
      'echo FLOOD-START',
      'line=$(head -c 99 /dev/zero | tr "\\0" x)',
      'yes "$line" | head -c 1073741824',
      'echo',
      'echo FLOOD-END',
    ].join('\n');
    const pids = stack.services.map((s) => ({ name: s.name, pid: s.proc.pid as number }));
    const peak: Record<string, number> = {};
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const { name, pid } of pids) peak[name] = Math.max(peak[name] ?? 0, rssMb(pid));
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const t0 = Date.now();
    let r: Finished;
    try {
      r = await runTask('flood', [{ name: 'run.sh', content: flood }]);
    } finally {
      sampling = false;
      await sampler;
    }
    const seconds = (Date.now() - t0) / 1000;
    expect(r.exec).toContain('Status: Success');
    for (const { name } of pids) expect({ name, rssMb: peak[name] < 250 ? 'under 250' : peak[name] }).toEqual({ name, rssMb: 'under 250' });
    expect(Object.keys(peak).sort()).toEqual(['devpool', 'executor', 'gateway', 'monitor']);

    // task_logs.txt: the head, one marker with what was dropped, and the tail.
    expect(r.logs.length).toBeLessThan(2 * 1024 * 1024 + 64 * 1024);
    expect(r.logs.startsWith('FLOOD-START\n')).toBe(true);
    const marker = /\[hivemind: (\d+) bytes \((\d+) lines\) of output dropped here; the head and the tail are kept\]/.exec(r.logs);
    expect(marker).not.toBeNull();
    expect(Number(marker![1])).toBeGreaterThan(1_000_000_000);
    expect(r.logs.indexOf('FLOOD-END')).toBeGreaterThan(marker!.index);

    // The pool holds a bounded tail that ends with the task's last line.
    const log = await pool.call(pool.master, pool.master.getTasklog, (token) => ({ task_id: 'flood', token }));
    expect(log.log.length).toBeLessThanOrEqual(10_240);
    expect(log.log).toContain('FLOOD-END');
    console.log(`1 GB flood: ${seconds.toFixed(1)} s end to end; peak RSS MB ${JSON.stringify(peak)}`);
  });
});
