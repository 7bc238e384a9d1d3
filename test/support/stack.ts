import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import { LABEL_INSTANCE, LABEL_MANAGED, recordDir, removeContainers, removeTree, runId } from './cleanup';

/** The repository root (from test/support, or from dist/test/support when compiled for bench/). */
export const ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

/** Whether a server can listen on `port` on every address now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
  });
}

/**
 * Test ports come from below the kernel's ephemeral range (32768-60999 here), which
 * outgoing connections draw their local ports from: a port taken from that range (by
 * listening on port 0) can be taken by any connection before the service listens on
 * it. Each jest worker has a slice of its own, walked in order from a random start, so
 * two workers never hand out the same port either.
 */
const PORTS_FROM = 20_000;
const PORTS_PER_WORKER = 1_500;
let nextPort = Math.floor(Math.random() * PORTS_PER_WORKER);

export async function freePort(): Promise<number> {
  const worker = Number(process.env.JEST_WORKER_ID ?? 0) % 8;
  const base = PORTS_FROM + worker * PORTS_PER_WORKER;
  for (let i = 0; i < PORTS_PER_WORKER; i++) {
    const port = base + (nextPort++ % PORTS_PER_WORKER);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port between ${base} and ${base + PORTS_PER_WORKER - 1}`);
}

export function redisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: jest globalSetup starts Redis (run npm test)');
  return url;
}

/**
 * A Redis prefix (and container instance label) of a test's own. Inside a jest run it
 * carries the run's id, so the global teardown knows which containers this run made.
 */
export const uniquePrefix = (name: string) => `hmtest-${runId() ? `${runId()}-` : ''}${name}-${randomBytes(4).toString('hex')}`;

/** Stacks not yet destroyed (jest-setup destroys what a test file left). */
const live = new Set<Stack>();

export type Service = 'devpool' | 'gateway' | 'executor' | 'monitor';

const READY: Record<Service, RegExp> = {
  devpool: /devpool listening/,
  gateway: /gateway started/,
  executor: /executor ready; consuming tasks/,
  monitor: /monitor started/,
};

export interface RunningService {
  name: Service;
  proc: ChildProcess;
  logFile: string;
  output: () => string;
  /** Its HTTP port (/health, /metrics; the dashboard on the gateway), or 0 for none. */
  httpPort: number;
}

/** The env variable naming each service's HTTP port. */
const HTTP_PORT_VAR: Partial<Record<Service, string>> = { gateway: 'HTTP_PORT', monitor: 'MONITOR_HTTP_PORT', executor: 'EXECUTOR_HEALTH_PORT' };

/**
 * Starts services from dist/ as separate processes (as they run for real) and waits
 * until each says it is ready. `npm run build` must have run (scripts/test.sh does).
 */
export class Stack {
  readonly dir: string;
  readonly env: Record<string, string>;
  readonly services: RunningService[] = [];

  private constructor(dir: string, env: Record<string, string>) {
    this.dir = dir;
    this.env = env;
  }

  static async create(name: string, extra: Record<string, string> = {}): Promise<Stack> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `hm-${name}-`));
    recordDir(dir);
    const devpoolPort = await freePort();
    const grpcPort = await freePort();
    const env: Record<string, string> = {
      HTTP_PORT: String(await freePort()),
      MONITOR_HTTP_PORT: String(await freePort()),
      DASHBOARD_TOKEN_FILE: path.join(dir, 'dashboard-token'),
      REDIS_URL: redisUrl(),
      REDIS_PREFIX: uniquePrefix(name),
      WORK_DIR: path.join(dir, 'work'),
      NODE_ID: 'alice',
      NODE_PASSWORD: 'alice-password',
      NODE_POOL_ADDRESS: `localhost:${devpoolPort}`,
      DEVPOOL_PORT: String(devpoolPort),
      GRPC_PORT: String(grpcPort),
      DEVPOOL_DISPATCH_INTERVAL: '0.5',
      HEARTBEAT_INTERVAL: '1',
      MONITOR_INTERVAL: '1',
      // Other work on a shared test machine must not make the node think its owner is busy.
      OWNER_BUSY_CPU_PERCENT: '0',
      LOG_LEVEL: 'debug',
      ...extra,
    };
    const stack = new Stack(dir, env);
    live.add(stack);
    return stack;
  }

  /** Destroys every stack not yet destroyed (after each test file, and at a benchmark's end). */
  static async destroyAll(): Promise<void> {
    await Promise.all([...live].map((s) => s.destroy()));
  }

  get devpoolAddress(): string {
    return this.env.NODE_POOL_ADDRESS;
  }

  get gatewayAddress(): string {
    return `localhost:${this.env.GRPC_PORT}`;
  }

  /** The gateway's HTTP base URL (dashboard, API, /health, /metrics). */
  get gatewayHttp(): string {
    return `http://127.0.0.1:${this.env.HTTP_PORT}`;
  }

  /** Starts a service and waits for its ready line (or for `ready`, when given). */
  async start(name: Service, extraEnv: Record<string, string> = {}, ready: RegExp = READY[name]): Promise<RunningService> {
    const logFile = path.join(this.dir, `${name}.log`);
    const log = createWriteStream(logFile);
    let text = '';
    // Each executor gets its own health port: several may run at once.
    const portEnv: Record<string, string> = name === 'executor' ? { EXECUTOR_HEALTH_PORT: String(await freePort()) } : {};
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...this.env, ...portEnv, ...extraEnv };
    const portVar = HTTP_PORT_VAR[name];
    const proc = spawn(process.execPath, [path.join(ROOT, 'dist/apps', name, 'src/main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const svc: RunningService = { name, proc, logFile, output: () => text, httpPort: portVar ? Number(env[portVar] ?? 0) : 0 };
    const onData = (c: Buffer) => {
      log.write(c);
      if (text.length < 4_000_000) text += c.toString();
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    this.services.push(svc);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not become ready in 60 s:\n${text.slice(-3000)}`)), 60_000);
      const check = () => {
        if (ready.test(text)) {
          clearTimeout(timer);
          proc.stdout?.off('data', check);
          resolve();
        }
      };
      proc.stdout?.on('data', check);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before it was ready:\n${text.slice(-3000)}`));
      });
      check();
    });
    return svc;
  }

  async startAll(): Promise<void> {
    await this.start('devpool');
    await this.start('monitor');
    await this.start('executor');
    await this.start('gateway');
  }

  async stop(svc: RunningService, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    // A process killed by a signal has no exit code, only a signal code.
    if (svc.proc.exitCode !== null || svc.proc.signalCode !== null) return svc.proc.exitCode;
    const exited = new Promise<number | null>((resolve) => svc.proc.once('exit', (code) => resolve(code)));
    svc.proc.kill(signal);
    const timer = setTimeout(() => svc.proc.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.services].reverse().map((s) => this.stop(s)));
  }

  /**
   * Stops every service and removes everything the stack put on the host, whatever
   * state a failed or timed-out test left it in: the containers of its instance
   * (an executor leaves a running task's container for its successor), mounts and
   * loop devices under its folder (the tasks' workspace volumes), then the folder.
   * HM_KEEP_TEST_DIRS=1 keeps the folder's files (the services' logs) for a post-mortem.
   * Returns what it had to remove besides the folder.
   */
  async destroy(): Promise<string[]> {
    live.delete(this);
    await this.stopAll().catch(() => undefined);
    const docker = new Docker(this.env.DOCKER_SOCKET ? { socketPath: this.env.DOCKER_SOCKET } : undefined);
    const left = (await removeContainers(docker, { label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${this.env.REDIS_PREFIX}`] })).map((c) => `container ${c}`);
    const keepFiles = process.env.HM_KEEP_TEST_DIRS === '1';
    if (keepFiles) console.log(`keeping ${this.dir} (HM_KEEP_TEST_DIRS=1)`);
    return [...left, ...(await removeTree(this.dir, { keepFiles }))];
  }

  logs(): string {
    return this.services.map((s) => `----- ${s.name}\n${s.output().slice(-4000)}`).join('\n');
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
