import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ExecutorBeat } from '@hivemind/shared/state/executors';
import { connectNodeState } from '@hivemind/shared/state/node-state';
import { Stack } from '../support/stack';

/**
 * The hivemind-worker command, run for real from dist/: doctor against the real Docker
 * daemon, a real Redis and a listening (or closed) pool port; health against Redis;
 * settings errors. Needs `npm run build`.
 */
const CLI = path.resolve(__dirname, '../../dist/apps/cli/src/main.js');

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    // Only PATH from this process: the CLI must not pick up the test runner's settings.
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, out: stdout + stderr });
    });
  });
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function row(out: string, check: string): string {
  return out.split('\n').find((l) => l.startsWith(check + ' ')) ?? `(no ${check} row)`;
}

describe('hivemind-worker CLI', () => {
  const redisUrl = process.env.TEST_REDIS_URL as string;
  let pool: net.Server;
  let poolPort: number;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-cli-'));

  beforeAll(async () => {
    pool = net.createServer((s) => s.end());
    await new Promise<void>((r) => pool.listen(0, '127.0.0.1', () => r()));
    poolPort = (pool.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => pool.close(() => r())));

  it('doctor: everything reachable reports ready and exits 0', async () => {
    const { code, out } = await runCli(['doctor', '--node-id', 'alice', '--node-pool', `127.0.0.1:${poolPort}`, '--cpu-only'], {
      REDIS_URL: redisUrl,
      NODE_PASSWORD: 'pw',
      WORK_DIR: path.join(dir, 'work'),
      MAX_DISK_GB: '0.001',
    });
    expect(out).toContain('node-id=alice [flag]');
    expect(row(out, 'Docker')).toMatch(/ ok +Engine /);
    expect(row(out, 'Task image')).toMatch(/ ok +hivemind\/task-runtime:latest/);
    // The test Redis runs without AOF: reachable, with a warning and its fix.
    expect(row(out, 'Redis')).toMatch(/ WARN +redis:\/\/127\.0\.0\.1:\d+ answers; .*AOF is off/);
    expect(out).toContain('fix: run Redis with --appendonly yes --maxmemory-policy noeviction');
    expect(row(out, 'Node Pool')).toMatch(new RegExp(` ok +127\\.0\\.0\\.1:${poolPort} accepts connections`));
    expect(row(out, 'Disk')).toMatch(/ ok +[\d.]+ GB free under /);
    expect(row(out, 'Credentials')).toMatch(/ ok +node id alice, password set/);
    expect(row(out, 'GPU')).toMatch(/ - +CPU only/);
    expect(out).toMatch(/ready \(1 warning\(s\)\)\./);
    expect(code).toBe(0);
  });

  it('doctor: what is down fails with a fix, and the command exits 1', async () => {
    const dead = await closedPort();
    const { code, out } = await runCli(['doctor'], {
      REDIS_URL: `redis://127.0.0.1:${dead}`,
      NODE_POOL_ADDRESS: `127.0.0.1:${dead}`,
      TASK_IMAGE: 'hivemind/no-such-image:never',
      WORK_DIR: path.join(dir, 'work'),
    });
    expect(out).toContain(`node-pool=127.0.0.1:${dead} [env]`);
    expect(row(out, 'Redis')).toMatch(/ FAIL +.*ECONNREFUSED/);
    expect(row(out, 'Node Pool')).toMatch(/ FAIL +.*ECONNREFUSED/);
    expect(row(out, 'Task image')).toMatch(/ FAIL +hivemind\/no-such-image:never is not on this machine/);
    expect(row(out, 'Credentials')).toMatch(/ FAIL +NODE_ID, NODE_PASSWORD missing/);
    expect(out).toContain('fix: build it: bash scripts/build-task-image.sh');
    expect(out).toMatch(/4 check\(s\) failed/);
    expect(code).toBe(1);
  });

  it('a flag beats the environment, which beats the config file', async () => {
    const cfg = path.join(dir, 'worker.json');
    writeFileSync(cfg, JSON.stringify({ nodeId: 'file-id', nodePool: `127.0.0.1:${poolPort}`, maxTasks: 3, env: { REDIS_URL: redisUrl, NODE_PASSWORD: 'pw' } }));
    const { out } = await runCli(['doctor', '--config', cfg, '--max-tasks', '9'], { NODE_ID: 'env-id', MAX_CONCURRENT_TASKS: '5', WORK_DIR: path.join(dir, 'work') });
    expect(out).toContain('node-id=env-id [env]');
    expect(out).toContain(`node-pool=127.0.0.1:${poolPort} [config]`);
    expect(out).toContain('max-tasks=9 [flag]');
    expect(out).toContain('cpu-only=false [default]');
    // The config file's "env" block reached the checks.
    expect(row(out, 'Redis')).toMatch(/ WARN +redis:\/\/127\.0\.0\.1/);
    expect(row(out, 'Credentials')).toMatch(/ ok +node id env-id/);
  });

  it('bad settings exit 2 naming what was wrong', async () => {
    const a = await runCli(['doctor', '--max-tasks', 'lots'], {});
    expect(a.code).toBe(2);
    expect(a.out).toContain('--max-tasks: expected an integer between 1 and 256, got "lots"');
    const b = await runCli(['doctor', '--config', path.join(dir, 'missing.json')], {});
    expect(b.code).toBe(2);
    expect(b.out).toContain('missing.json: not found');
    const c = await runCli(['doctor'], { TASK_TIMEOUT: 'soon' });
    expect(c.code).toBe(2);
    expect(c.out).toContain('TASK_TIMEOUT');
    const d = await runCli(['start'], { REDIS_URL: redisUrl, WORK_DIR: path.join(dir, 'work') });
    expect(d.code).toBe(2);
    expect(d.out).toContain('NODE_ID: is required');
  });

  it('health (no HTTP endpoint): an executor is healthy only while its fresh beat is in Redis', async () => {
    const prefix = `hmcli${process.pid}`;
    const env = { REDIS_URL: redisUrl, REDIS_PREFIX: prefix, EXECUTOR_HEALTH_PORT: String(await closedPort()) };
    const state = connectNodeState(redisUrl, prefix, 'test-cli');
    try {
      let r = await runCli(['health', 'executor'], env);
      expect(r.out).toContain(`no beat from an executor on ${os.hostname()} in Redis`);
      expect(r.code).toBe(1);
      const beat = (seenAt: number, runtime: ExecutorBeat['runtime'] = 'docker'): ExecutorBeat => ({ executorId: `${os.hostname()}-123`, runtime, docker: 'available', running: 0, concurrency: 1, seenAt });
      await state.executors.beat(beat(Date.now() - 60_000));
      r = await runCli(['health', 'executor'], env);
      expect(r.code).toBe(1);
      await state.executors.beat(beat(Date.now()));
      r = await runCli(['health', 'executor'], env);
      expect(r.out).toMatch(/executor: healthy: executor .*-123 beat \d+ s ago \(runtime docker\)/);
      expect(r.code).toBe(0);
      // With the fallback off, a closed health port is unhealthy.
      r = await runCli(['health', 'executor'], { ...env, HEALTHCHECK_FALLBACK: 'false' });
      expect(r.out).toContain('nothing listens on 127.0.0.1:');
      expect(r.code).toBe(1);
    } finally {
      await state.executors.remove(`${os.hostname()}-123`);
      await state.close();
    }
  });

  it('health: an HTTP /health/ready answer decides when there is one', async () => {
    const http = await import('node:http');
    let status = 503;
    const server = http.createServer((req, res) => {
      res.statusCode = req.url === '/health/ready' ? status : 404;
      res.end(JSON.stringify({ status: status === 200 ? 'ok' : 'error' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      let r = await runCli(['health', 'monitor'], { MONITOR_HTTP_PORT: String(port) });
      expect(r.out).toContain(`GET /health/ready on ${port}: 503`);
      expect(r.code).toBe(1);
      status = 200;
      r = await runCli(['health'], { SERVICE: 'monitor', MONITOR_HTTP_PORT: String(port) });
      expect(r.out).toContain(`monitor: healthy: GET /health/ready on ${port}: 200`);
      expect(r.code).toBe(0);
    } finally {
      server.close();
    }
  });

  it('start: runs gateway, executor and monitor with the flags as settings, logs to --log-file, drains on SIGTERM', async () => {
    const stack = await Stack.create('clistart');
    await stack.start('devpool');
    const logFile = path.join(dir, 'logs', 'worker.log');
    const cfg = path.join(dir, 'start.json');
    writeFileSync(cfg, JSON.stringify({ maxTasks: 1, env: { REDIS_URL: stack.env.REDIS_URL, REDIS_PREFIX: stack.env.REDIS_PREFIX, GRPC_PORT: stack.env.GRPC_PORT, WORK_DIR: stack.env.WORK_DIR } }));
    const proc = spawn(process.execPath, [CLI, '--node-id', 'alice', '--node-pool', stack.devpoolAddress, '--max-tasks', '3', '--debug', '--log-file', logFile, '--config', cfg], {
      env: { PATH: process.env.PATH ?? '', NODE_PASSWORD: 'alice-password', MAX_CONCURRENT_TASKS: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!(/worker gRPC server listening/.test(out) && /executor ready; consuming tasks/.test(out) && /monitor started/.test(out))) {
        if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`the services did not start:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // The flag beat the environment (2) and the config file (1).
      expect(out).toContain('max-tasks=3 [flag]');
      expect(out).toMatch(/"level":20/); // --debug reached the services
      // The executor beats under the config file's Redis prefix ("env" block reached it).
      const state = connectNodeState(stack.env.REDIS_URL, stack.env.REDIS_PREFIX, 'test-cli');
      try {
        const beats = await state.executors.all();
        expect(beats).toHaveLength(1);
      } finally {
        await state.close();
      }
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const logged = readFileSync(logFile, 'utf8');
    for (const service of ['gateway', 'executor', 'monitor']) expect(logged).toContain(`"service":"${service}"`);
    expect(out).toContain('SIGTERM: stopping the services');
    await stack.stopAll();
  });
});
