import { isIP } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { parseWorkSchedule, WorkSchedule } from '../owner/work-schedule';
import { DEFAULT_IMAGE_NAME, parseImageNames } from '../task-format/task-manifest';
import { wireguardAddress } from '../vpn/wireguard';
import { bool, ConfigError, hostPort, num, oneOf, optNum, optStr, parseEnv, str } from './env-parsers';
import { errorMessage } from '../util/errors';
import { readSecretFile } from '../security/secrets';

/**
 * Configuration of the worker services (gateway, executor, monitor). Read from the
 * environment once at boot, validated, and injected as WORKER_CONFIG. The README's
 * configuration table lists the same variables.
 */
export const workerEnvSchema = z.object({
  NODE_ID: str(''),
  NODE_PASSWORD: optStr(),
  NODE_POOL_ADDRESS: hostPort('localhost:50051'),
  ADVERTISE_HOST: optStr(),
  ADVERTISE_PORT: optNum({ int: true, min: 1, max: 65535 }),
  GRPC_BIND: str('0.0.0.0'),
  GRPC_PORT: num(50053, { int: true, min: 1, max: 65535 }),
  LOCATION: str(''),
  MAX_MESSAGE_MB: num(1024, { int: true, min: 1, max: 2047 }),

  NODE_PASSWORD_FILE: optStr(),
  CREDENTIALS_FILE: str('./.data/credentials.json'),
  ALLOWED_POOL_ADDRESSES: optStr(),
  POOL_SHARED_SECRET: optStr(),
  POOL_SHARED_SECRET_FILE: optStr(),
  GRPC_TLS_CERT: optStr(),
  GRPC_TLS_KEY: optStr(),
  GRPC_TLS_CLIENT_CA: optStr(),
  POOL_TLS: bool(false),
  POOL_TLS_CA: optStr(),
  POOL_TLS_CERT: optStr(),
  POOL_TLS_KEY: optStr(),

  REDIS_URL: str('redis://127.0.0.1:6379'),
  REDIS_PREFIX: str('hivemind'),
  // Sent to Redis when REDIS_URL carries no password (e.g. a Secret, or the file
  // docker-compose.yml generates); never echoed in an error.
  REDIS_PASSWORD: optStr(),
  REDIS_PASSWORD_FILE: optStr(),

  MAX_CONCURRENT_TASKS: num(2, { int: true, min: 1, max: 256 }),
  EXECUTOR_CONCURRENCY: optNum({ int: true, min: 1, max: 256 }),
  // setTimeout holds at most 2^31-1 ms (about 24.8 days).
  TASK_TIMEOUT: num(3600, { min: 1, max: 2_000_000 }),
  STOP_GRACE_PERIOD: num(1, { min: 0, max: 300 }),
  DRAIN_TIMEOUT: num(60, { min: 0, max: 86_400 }),
  JOB_LOCK_DURATION: num(30, { min: 1, max: 3600 }),
  /** Fault tests only: the process kills itself at this point (libs/shared/src/util/crash-point.ts). */
  FAULT_CRASH_AT: oneOf(['', 'result:before-upload', 'result:after-ack', 'result:after-record'] as const, ''),
  RECONCILE_INTERVAL: num(120, { min: 5, max: 86_400 }),
  MAX_CPU_CORES: optNum({ min: 0.1 }),
  MAX_MEMORY_GB: optNum({ int: true, min: 1 }),
  OWNER_RESERVED_CORES: num(0, { min: 0 }),
  OWNER_RESERVED_MEMORY_GB: num(0, { int: true, min: 0 }),
  MAX_DISK_GB: num(20, { min: 0.001 }),
  CPU_SCORE: optNum({ int: true, min: 1 }),
  CPU_ONLY: bool(false),

  OWNER_BUSY_CPU_PERCENT: num(70, { min: 0, max: 100 }),
  OWNER_BUSY_AFTER: num(30, { min: 0, max: 86_400 }),
  OWNER_IDLE_AFTER: num(60, { min: 0, max: 86_400 }),
  OWNER_BUSY_PAUSE_TASKS: bool(false),
  WORK_SCHEDULE: optStr().superRefine((v, ctx) => {
    if (v === undefined) return;
    try {
      parseWorkSchedule(v, 'WORK_SCHEDULE');
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: errorMessage(err).replace(/^WORK_SCHEDULE: /, '') });
    }
  }),

  HEARTBEAT_INTERVAL: num(10, { min: 0.5 }),
  REGISTER_INTERVAL: num(30, { min: 1 }),
  BALANCE_INTERVAL: num(60, { min: 1 }),
  NODE_USAGE_INTERVAL: num(15, { min: 1 }),
  TASK_USAGE_INTERVAL: num(1, { min: 0.2 }),
  OUTPUT_FLUSH_INTERVAL: num(1, { min: 0.05, max: 1 }),
  RESULT_UPLOAD_GUARD: num(1, { min: 0 }),
  // Seconds a result the pool refused is still retried (slowly, its slot free) before it is given up.
  RESULT_REFUSED_RETRY: num(86_400, { min: 0 }),
  RESULT_MAX_READ_MB: num(8192, { min: 1 }),
  POOL_CALL_TIMEOUT: num(30, { min: 1 }),

  DOCKER_ENABLED: bool(true),
  ALLOW_PROCESS_RUNTIME: bool(false),
  PROCESS_SANDBOX: oneOf(['auto', 'bwrap', 'none'] as const, 'auto'),
  PROCESS_SANDBOX_FORCE_NONE: bool(false),
  DOCKER_SOCKET: str('/var/run/docker.sock'),
  DOCKER_RESTART_WAIT: num(120, { min: 1, max: 86_400 }),
  TASK_IMAGE: str('hivemind/task-runtime:latest'),
  TASK_SHELL_IMAGE: optStr(),
  // Images a task may ask for by name in its hivemind.json: name=image, comma separated.
  TASK_IMAGES: optStr().superRefine((v, ctx) => {
    if (v === undefined) return;
    try {
      parseImageNames(v);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: errorMessage(err) });
    }
  }),
  TASK_IMAGE_ALLOWLIST: optStr(),
  TASK_IMAGE_PULL: bool(true),
  REQUIREMENTS_INSTALL: bool(true),
  REQUIREMENTS_ALLOW_SDIST: bool(false),
  REQUIREMENTS_MAX_KB: num(64, { int: true, min: 1, max: 10_240 }),
  REQUIREMENTS_MAX_LINES: num(1000, { int: true, min: 1, max: 100_000 }),
  // Never echoed in an error: it may hold a password.
  PIP_INDEX_URL: optStr().superRefine((v, ctx) => {
    if (v === undefined) return;
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(v).protocol);
    } catch {
      ok = false;
    }
    if (!ok) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected an http:// or https:// URL (the value is not shown: it may hold a password)' });
  }),
  PIP_TRUSTED_HOST: optStr(),
  PIP_PROXY: optStr(),
  INSTALL_NETWORK: str('bridge'),
  INSTALL_TIMEOUT: num(600, { min: 1, max: 86_400 }),
  TASK_USER: str('10001:10001').superRefine((v, ctx) => {
    if (!/^\d+:\d+$/.test(v)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected uid:gid (numbers), got "${v}"` });
  }),
  TASK_PIDS_LIMIT: num(256, { int: true, min: 16 }),
  TASK_TMPFS_MB: num(64, { int: true, min: 1 }),
  TASK_DEFAULT_MEMORY_MB: num(1024, { int: true, min: 64 }),
  TASK_MIN_MEMORY_MB: num(128, { int: true, min: 16 }),
  TASK_DEFAULT_CPUS: num(1, { min: 0.05 }),
  TASK_MIN_CPUS: num(0.25, { min: 0.01 }),
  TASK_LOG_HEAD_KB: num(1024, { int: true, min: 1 }),
  TASK_LOG_TAIL_KB: num(1024, { int: true, min: 1 }),
  GPU_MODE: oneOf(['auto', 'off'] as const, 'auto'),
  GPU_SHARING: bool(false),
  GPU_DETECT_TIMEOUT: num(10, { min: 0.1, max: 300 }),
  FAILED_WORKSPACE_RETENTION: num(3600, { min: 0, max: 31_536_000 }),
  MIN_FREE_DISK_MB: num(2048, { min: 0 }),
  DISK_CHECK_INTERVAL: num(15, { min: 1, max: 86_400 }),
  WORKSPACE_QUOTA: oneOf(['auto', 'loop', 'watch', 'off'] as const, 'auto'),
  WORKSPACE_QUOTA_MB: optNum({ int: true, min: 1 }),

  ZIP_MAX_ENTRIES: num(10000, { int: true, min: 1 }),
  ZIP_MAX_UNCOMPRESSED_MB: num(4096, { min: 1 }),
  PREPARE_TIMEOUT: num(300, { min: 1, max: 86_400 }),
  PACK_TIMEOUT: num(300, { min: 1, max: 86_400 }),

  WORK_DIR: str('./.data/work'),
  TASK_STORE: oneOf(['fs', 'redis'] as const, 'fs'),
  TASK_STORE_MAX_MB: num(256, { int: true, min: 8, max: 2047 }),
  TASK_STORE_TTL: num(604_800, { int: true, min: 60 }),
  LOG_DIR: optStr(),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const, 'info'),
  /** stdout: json, or pretty (lines for a person); files in LOG_DIR stay JSON. `hivemind-worker start` on a terminal makes it pretty. */
  LOG_FORMAT: oneOf(['json', 'pretty'] as const, 'json'),

  LOG_FILE_SIZE_MB: num(10, { min: 1 }),
  LOG_FILE_COUNT: num(5, { int: true, min: 1, max: 1000 }),

  MONITOR_INTERVAL: num(5, { min: 0.5 }),
  MONITOR_HISTORY: num(720, { int: true, min: 1 }),

  HTTP_HOST: str('127.0.0.1'),
  HTTP_PORT: num(5001, { int: true, min: 1, max: 65535 }),
  MONITOR_HTTP_PORT: num(5002, { int: true, min: 0, max: 65535 }),
  EXECUTOR_HEALTH_PORT: num(5003, { int: true, min: 0, max: 65535 }),
  DASHBOARD_TOKEN: optStr(),
  DASHBOARD_TOKEN_FILE: optStr(),
  // auto: /metrics needs the token unless HTTP_HOST is a loopback address.
  METRICS_AUTH: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '' || v.trim().toLowerCase() === 'auto') return 'auto' as const;
      const parsed = bool(false).safeParse(v);
      if (!parsed.success) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected auto, true or false, got "${v}"` });
        return z.NEVER;
      }
      return parsed.data;
    }),
  DASHBOARD_COOKIE_SECURE: bool(false),
  HEALTH_TIMEOUT: num(3, { min: 0.1, max: 60 }),
  HEALTH_HEARTBEAT_MAX_AGE: optNum({ min: 1 }),
  HEALTH_MIN_FREE_DISK_MB: num(1024, { min: 0 }),
  HEALTH_MIN_FREE_MEMORY_MB: num(256, { min: 0 }),
  TASK_HISTORY_SIZE: num(100, { int: true, min: 1, max: 10_000 }),
  TASK_HISTORY_LOG_KB: num(16, { int: true, min: 0, max: 1024 }),
});

export type WorkerEnv = z.output<typeof workerEnvSchema>;

/** Settings after parsing, with machine-derived values filled in. */
export interface WorkerConfig extends WorkerEnv {
  /** ADVERTISE_HOST, else the WireGuard interface's address (wg0 first), else localhost. */
  ADVERTISE_HOST: string;
  /** Cores the node offers (MAX_CPU_CORES, else the machine's). */
  cpuCores: number;
  /** Memory the node offers in whole GB (MAX_MEMORY_GB, else the machine's). */
  memoryGb: number;
  /** Benchmark-style CPU score registered with the pool. */
  cpuScore: number;
  advertisePort: number;
  executorConcurrency: number;
  workDir: string;
  maxMessageBytes: number;
  /** When the node takes work (WORK_SCHEDULE); null: always. */
  workSchedule: WorkSchedule | null;
  /** Where the dashboard token lives: DASHBOARD_TOKEN_FILE, else beside CREDENTIALS_FILE. */
  dashboardTokenFile: string;
  /** Seconds without a heartbeat the pool took before the gateway is not ready. */
  heartbeatMaxAge: number;
  /** The image tasks run in, by entry point: `run.sh` and Python files. */
  taskImages: { shell: string; python: string };
  /** The images a task may name in its hivemind.json (TASK_IMAGES), `default` (TASK_IMAGE) included. */
  namedImages: Record<string, string>;
  /** Images tasks may run in (TASK_IMAGE_ALLOWLIST, else the two defaults and TASK_IMAGES). */
  allowedImages: string[];
  /** Most bytes one task's workspace may hold (WORKSPACE_QUOTA_MB, else MAX_DISK_GB). */
  workspaceQuotaBytes: number;
  /** Whether /metrics needs the dashboard token (METRICS_AUTH, auto: HTTP_HOST is not loopback). */
  metricsAuth: boolean;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: only this machine reaches them. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(h) === 6 && new URL(`http://[${h}]/`).hostname === '[::1]';
}

/**
 * REDIS_URL with REDIS_PASSWORD (or the content of REDIS_PASSWORD_FILE) in it, when one
 * is set. A URL that already carries a password and a password setting is refused:
 * which one is meant would be a guess.
 */
function redisUrlWithPassword(e: WorkerEnv): string {
  if (e.REDIS_PASSWORD !== undefined && e.REDIS_PASSWORD_FILE !== undefined) {
    throw new ConfigError('Invalid configuration:\n  REDIS_PASSWORD: set REDIS_PASSWORD or REDIS_PASSWORD_FILE, not both');
  }
  const password = e.REDIS_PASSWORD ?? (e.REDIS_PASSWORD_FILE !== undefined ? readSecretFile(e.REDIS_PASSWORD_FILE, 'REDIS_PASSWORD_FILE') : undefined);
  if (password === undefined) return e.REDIS_URL;
  const variable = e.REDIS_PASSWORD !== undefined ? 'REDIS_PASSWORD' : 'REDIS_PASSWORD_FILE';
  if (password === '') throw new ConfigError(`Invalid configuration:\n  ${variable}: the password is empty`);
  let u: URL;
  try {
    u = new URL(e.REDIS_URL);
  } catch {
    throw new ConfigError(`Invalid configuration:\n  REDIS_URL: expected redis://host:port (needed to add ${variable}), got "${e.REDIS_URL.replace(/\/\/[^@/]*@/, '//***@')}"`);
  }
  if (u.password) throw new ConfigError(`Invalid configuration:\n  ${variable}: REDIS_URL already carries a password; set the password in one place`);
  u.password = encodeURIComponent(password);
  return u.toString();
}

export const WORKER_CONFIG = Symbol('WORKER_CONFIG');

export function loadWorkerConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  const e = parseEnv(workerEnvSchema, env);
  const machineCores = os.cpus().length || 1;
  const machineGb = Math.max(1, Math.floor(os.totalmem() / 1024 ** 3));
  const cpuCores = Math.min(e.MAX_CPU_CORES ?? machineCores, machineCores);
  const memoryGb = Math.min(e.MAX_MEMORY_GB ?? machineGb, machineGb);
  if (e.OWNER_RESERVED_CORES >= cpuCores) {
    throw new ConfigError(`Invalid configuration:\n  OWNER_RESERVED_CORES: ${e.OWNER_RESERVED_CORES} must be less than the ${cpuCores} cores the node offers`);
  }
  if (e.OWNER_RESERVED_MEMORY_GB >= memoryGb) {
    throw new ConfigError(`Invalid configuration:\n  OWNER_RESERVED_MEMORY_GB: ${e.OWNER_RESERVED_MEMORY_GB} must be less than the ${memoryGb} GB the node offers`);
  }
  const taskImages = { shell: e.TASK_SHELL_IMAGE ?? e.TASK_IMAGE, python: e.TASK_IMAGE };
  const named = parseImageNames(e.TASK_IMAGES ?? '');
  if (named[DEFAULT_IMAGE_NAME] !== undefined && named[DEFAULT_IMAGE_NAME] !== e.TASK_IMAGE) {
    throw new ConfigError(
      `Invalid configuration:\n  TASK_IMAGES: "${DEFAULT_IMAGE_NAME}" is TASK_IMAGE (${e.TASK_IMAGE}), not ${named[DEFAULT_IMAGE_NAME]}; set TASK_IMAGE to change the default image`,
    );
  }
  const namedImages = { ...named, [DEFAULT_IMAGE_NAME]: e.TASK_IMAGE };
  const allowedImages = e.TASK_IMAGE_ALLOWLIST
    ? e.TASK_IMAGE_ALLOWLIST.split(',').map((x) => x.trim()).filter(Boolean)
    : [...new Set([taskImages.python, taskImages.shell, ...Object.values(named)])];
  const notAllowed = [...new Set([taskImages.python, taskImages.shell])].filter((i) => !allowedImages.includes(i));
  if (notAllowed.length) {
    throw new ConfigError(`Invalid configuration:\n  TASK_IMAGE_ALLOWLIST: must include the default task images; missing ${notAllowed.join(', ')}`);
  }
  const namedNotAllowed = Object.entries(named).filter(([, image]) => !allowedImages.includes(image));
  if (namedNotAllowed.length) {
    throw new ConfigError(
      `Invalid configuration:\n  TASK_IMAGES: ${namedNotAllowed.map(([n, i]) => `${n}=${i}`).join(', ')} not on TASK_IMAGE_ALLOWLIST; add the image there or leave it out of TASK_IMAGES`,
    );
  }
  return {
    ...e,
    REDIS_URL: redisUrlWithPassword(e),
    ADVERTISE_HOST: e.ADVERTISE_HOST ?? wireguardAddress() ?? 'localhost',
    cpuCores,
    memoryGb,
    cpuScore: e.CPU_SCORE ?? Math.max(1, Math.round(cpuCores * 100)),
    advertisePort: e.ADVERTISE_PORT ?? e.GRPC_PORT,
    executorConcurrency: e.EXECUTOR_CONCURRENCY ?? e.MAX_CONCURRENT_TASKS,
    workDir: path.resolve(e.WORK_DIR),
    maxMessageBytes: e.MAX_MESSAGE_MB * 1024 * 1024,
    workSchedule: e.WORK_SCHEDULE ? parseWorkSchedule(e.WORK_SCHEDULE) : null,
    dashboardTokenFile: path.resolve(e.DASHBOARD_TOKEN_FILE ?? path.join(path.dirname(e.CREDENTIALS_FILE), 'dashboard-token')),
    heartbeatMaxAge: e.HEALTH_HEARTBEAT_MAX_AGE ?? Math.max(30, 3 * e.HEARTBEAT_INTERVAL, 2 * e.REGISTER_INTERVAL),
    taskImages,
    namedImages,
    allowedImages,
    workspaceQuotaBytes: Math.round(Math.min(e.WORKSPACE_QUOTA_MB ?? Infinity, e.MAX_DISK_GB * 1024) * 1024 * 1024),
    metricsAuth: e.METRICS_AUTH === 'auto' ? !isLoopbackHost(e.HTTP_HOST) : e.METRICS_AUTH,
  };
}
