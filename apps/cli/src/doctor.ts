import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import type { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { resolveCredentials } from '@hivemind/shared/security/secrets';
import { tcpOpen } from './health';
import { errorMessage } from '@hivemind/shared/util/errors';

/**
 * `hivemind-worker doctor`: checks what the worker needs (Node.js, Docker, the task
 * image, Redis, the Node Pool, disk, credentials, GPU) and says how to fix what is not
 * ready. Every check has a time limit, so a hung daemon or driver cannot hang it.
 */

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  check: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

const TIMEOUT_MS = 5000;

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_r, reject) => (t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms))),]).finally(() =>
    clearTimeout(t),
  );
}

function run(cmd: string, args: string[], ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: ms, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        reject(new Error(e.code === 'ENOENT' ? `${cmd} is not installed` : e.killed ? `${cmd} did not finish within ${ms / 1000} s` : (stderr.trim() || e.message).split('\n')[0]));
      } else resolve(stdout);
    });
  });
}

const gb = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GB`;

export function checkNode(version = process.versions.node): CheckResult {
  const [major, minor] = version.split('.').map(Number);
  const ok = major > 20 || (major === 20 && minor >= 11);
  return ok
    ? { check: 'Node.js', status: 'ok', detail: `v${version}` }
    : { check: 'Node.js', status: 'fail', detail: `v${version}`, fix: 'install Node.js 20.11 or later (e.g. the nodejs package from NodeSource)' };
}

export async function checkDocker(config: WorkerConfig): Promise<CheckResult[]> {
  if (!config.DOCKER_ENABLED) {
    return [
      { check: 'Docker', status: config.ALLOW_PROCESS_RUNTIME ? 'warn' : 'fail', detail: 'DOCKER_ENABLED=false', fix: config.ALLOW_PROCESS_RUNTIME ? 'tasks run as plain processes (weak isolation); set DOCKER_ENABLED=true' : 'set DOCKER_ENABLED=true (no runtime can run tasks)' },
      { check: 'Task image', status: 'skip', detail: 'Docker disabled' },
    ];
  }
  const docker = new Docker({ socketPath: config.DOCKER_SOCKET });
  let version: { Version?: string };
  try {
    version = await within(docker.version(), TIMEOUT_MS, 'the Docker daemon');
  } catch (err) {
    const msg = (err as NodeJS.ErrnoException).code === 'EACCES' ? `permission denied on ${config.DOCKER_SOCKET}` : errorMessage(err);
    return [
      {
        check: 'Docker',
        status: 'fail',
        detail: msg,
        fix: msg.startsWith('permission') ? 'add this user to the docker group (usermod -aG docker $USER) and log in again' : `install and start Docker (apt-get install docker.io; systemctl start docker), or set DOCKER_SOCKET (now ${config.DOCKER_SOCKET})`,
      },
      { check: 'Task image', status: 'skip', detail: 'Docker not reachable' },
    ];
  }
  const out: CheckResult[] = [{ check: 'Docker', status: 'ok', detail: `Engine ${version.Version ?? '?'} at ${config.DOCKER_SOCKET}` }];
  try {
    const info = await within(docker.getImage(config.TASK_IMAGE).inspect(), TIMEOUT_MS, 'image inspect');
    out.push({ check: 'Task image', status: 'ok', detail: `${config.TASK_IMAGE} (${(info.Size / 1024 ** 2).toFixed(0)} MB)` });
  } catch (err) {
    const missing = (err as { statusCode?: number }).statusCode === 404;
    out.push({
      check: 'Task image',
      status: 'fail',
      detail: missing ? `${config.TASK_IMAGE} is not on this machine` : errorMessage(err),
      fix: 'build it: bash scripts/build-task-image.sh (or docker build -t hivemind/task-runtime:latest docker/task-runtime)',
    });
  }
  return out;
}

export async function checkRedis(config: WorkerConfig): Promise<CheckResult> {
  const r = new Redis(config.REDIS_URL, { lazyConnect: true, connectTimeout: TIMEOUT_MS, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  let lastError: Error | undefined;
  r.on('error', (err: Error) => (lastError = err));
  try {
    await within(r.connect(), TIMEOUT_MS, 'Redis');
    await within(r.ping(), TIMEOUT_MS, 'Redis PING');
    const policy = ((await r.config('GET', 'maxmemory-policy')) as string[])[1];
    const aof = ((await r.config('GET', 'appendonly')) as string[])[1];
    const notes = [policy !== 'noeviction' && `maxmemory-policy is ${policy}`, aof !== 'yes' && 'AOF is off'].filter(Boolean);
    const where = config.REDIS_URL.replace(/\/\/[^@/]*@/, '//***@');
    return notes.length
      ? { check: 'Redis', status: 'warn', detail: `${where} answers; ${notes.join(', ')}`, fix: 'run Redis with --appendonly yes --maxmemory-policy noeviction so queued tasks and results survive a restart' }
      : { check: 'Redis', status: 'ok', detail: `${where} answers (AOF on, noeviction)` };
  } catch (err) {
    return { check: 'Redis', status: 'fail', detail: `${config.REDIS_URL.replace(/\/\/[^@/]*@/, '//***@')}: ${(lastError ?? (err as Error)).message}`, fix: `start Redis (apt-get install redis-server) or point REDIS_URL at one (now ${config.REDIS_URL})` };
  } finally {
    r.disconnect();
  }
}

export async function checkPool(config: WorkerConfig): Promise<CheckResult> {
  const m = /^(.+):(\d+)$/.exec(config.NODE_POOL_ADDRESS);
  const host = m ? m[1].replace(/^\[|\]$/g, '') : config.NODE_POOL_ADDRESS;
  const port = m ? Number(m[2]) : 50051;
  try {
    await tcpOpen(host, port, TIMEOUT_MS);
    return { check: 'Node Pool', status: 'ok', detail: `${config.NODE_POOL_ADDRESS} accepts connections` };
  } catch (err) {
    return { check: 'Node Pool', status: 'fail', detail: errorMessage(err), fix: 'check --node-pool / NODE_POOL_ADDRESS and that this machine can reach it (firewall, DNS)' };
  }
}

export function checkCredentials(config: WorkerConfig): CheckResult {
  try {
    const c = resolveCredentials(config);
    return { check: 'Credentials', status: 'ok', detail: `node id ${c.nodeId}, password set` };
  } catch (err) {
    return {
      check: 'Credentials',
      status: 'fail',
      detail: errorMessage(err).split('\n').slice(1).map((s) => s.trim().split(':')[0]).join(', ') + ' missing',
      fix: 'pass --node-id (or NODE_ID) and set NODE_PASSWORD / NODE_PASSWORD_FILE, or run `npm run login` once',
    };
  }
}

/** Free space where WORK_DIR is (or would be created). */
export async function checkDisk(config: WorkerConfig): Promise<CheckResult> {
  let dir = config.workDir;
  for (;;) {
    if (await fs.stat(dir).then(() => true, () => false)) break;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  try {
    const s = await fs.statfs(dir);
    const free = s.bavail * s.bsize;
    const need = config.MAX_DISK_GB * 1024 ** 3;
    if (free < need) {
      return { check: 'Disk', status: 'warn', detail: `${gb(free)} free under ${dir}; one task may use up to ${config.MAX_DISK_GB} GB`, fix: 'free some space, move WORK_DIR to a larger disk, or lower MAX_DISK_GB' };
    }
    return { check: 'Disk', status: 'ok', detail: `${gb(free)} free under ${dir} (tasks up to ${config.MAX_DISK_GB} GB)` };
  } catch (err) {
    return { check: 'Disk', status: 'fail', detail: errorMessage(err), fix: 'set WORK_DIR to a writable folder' };
  }
}

export async function checkGpu(config: WorkerConfig, nvidiaSmi = 'nvidia-smi'): Promise<CheckResult> {
  if (config.CPU_ONLY) return { check: 'GPU', status: 'skip', detail: 'CPU only (--cpu-only)' };
  try {
    const out = await run(nvidiaSmi, ['--query-gpu=name,memory.total', '--format=csv,noheader'], TIMEOUT_MS);
    const gpus = out.split('\n').map((s) => s.trim()).filter(Boolean);
    if (!gpus.length) return { check: 'GPU', status: 'warn', detail: 'nvidia-smi lists no GPU', fix: 'check the NVIDIA driver, or run with --cpu-only' };
    return { check: 'GPU', status: 'ok', detail: gpus.join('; ') };
  } catch (err) {
    const msg = errorMessage(err);
    return {
      check: 'GPU',
      status: msg.includes('not installed') ? 'skip' : 'warn',
      detail: msg.includes('not installed') ? 'no NVIDIA GPU (nvidia-smi not found): the node offers CPU only' : msg,
      fix: msg.includes('not installed') ? undefined : 'check the NVIDIA driver (nvidia-smi), or run with --cpu-only',
    };
  }
}

export async function runDoctor(config: WorkerConfig): Promise<CheckResult[]> {
  const [docker, redis, pool, disk, gpu] = await Promise.all([checkDocker(config), checkRedis(config), checkPool(config), checkDisk(config), checkGpu(config)]);
  return [checkNode(), ...docker, redis, pool, disk, checkCredentials(config), gpu];
}

const MARK: Record<CheckStatus, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: '-' };

/** A plain-text table: check, status, detail, and the fix under each row that needs one. */
export function formatTable(results: CheckResult[]): string {
  const w1 = Math.max(5, ...results.map((r) => r.check.length));
  const lines = [`${'CHECK'.padEnd(w1)}  STATUS  DETAIL`];
  for (const r of results) {
    lines.push(`${r.check.padEnd(w1)}  ${MARK[r.status].padEnd(6)}  ${r.detail}`);
    if (r.fix && r.status !== 'ok') lines.push(`${''.padEnd(w1)}  ${''.padEnd(6)}  fix: ${r.fix}`);
  }
  const fails = results.filter((r) => r.status === 'fail').length;
  const warns = results.filter((r) => r.status === 'warn').length;
  lines.push('', fails ? `${fails} check(s) failed, ${warns} warning(s): the worker is not ready.` : `ready${warns ? ` (${warns} warning(s))` : ''}.`);
  return lines.join('\n');
}
