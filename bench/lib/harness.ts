import { promises as fs } from 'node:fs';
import Docker from 'dockerode';
import { ExecuteTaskRequest, WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { DockerRuntime } from '../../apps/executor/src/runtime/docker.runtime';
import { executeRequest, uploadTask } from '../../test/support/pool';
import { RunningService, Stack } from '../../test/support/stack';

// Interrupted (Ctrl-C, a CI timeout): the stacks' services, task containers, workspace
// volumes and folders go before the process does.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`${signal}: removing the benchmark's stacks`);
    void Stack.destroyAll().finally(() => process.exit(130));
  });
}

/** Environment every benchmark stack shares: the upload guard off, quiet logs. */
export const BENCH_ENV = { LOG_LEVEL: 'info', RESULT_UPLOAD_GUARD: '0' };

/**
 * Opt-in measurement knobs for a stack's worker services (never set by `npm run bench`):
 * BENCH_NODE_OPTIONS is given to the executor and gateway as NODE_OPTIONS (e.g.
 * `--require dist/bench/lib/cpu-profile.js`, with BENCH_PROFILE_DIR), and BENCH_DOCKER_SOCKET points the executor at
 * another Docker socket (e.g. a proxy that counts the Engine API calls).
 */
export function measuredEnv(service: 'executor' | 'gateway'): Record<string, string> {
  const env: Record<string, string> = { ...serviceEnv() };
  if (process.env.BENCH_NODE_OPTIONS) env.NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS;
  if (process.env.BENCH_PROFILE_DIR) env.BENCH_PROFILE_DIR = process.env.BENCH_PROFILE_DIR;
  if (service === 'executor' && process.env.BENCH_DOCKER_SOCKET) env.DOCKER_SOCKET = process.env.BENCH_DOCKER_SOCKET;
  return env;
}

/**
 * BENCH_SERVICE_ENV: settings (a JSON object) given to the measured services on top of
 * the defaults, to measure a lever, e.g. `{"WORKSPACE_QUOTA":"watch"}`.
 */
function serviceEnv(): Record<string, string> {
  const raw = process.env.BENCH_SERVICE_ENV;
  if (!raw) return {};
  const parsed: unknown = JSON.parse(raw);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`BENCH_SERVICE_ENV must be a JSON object, not ${raw}`);
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
}

/** A gRPC client of a stack's gateway, as the pool calls it. */
export function gatewayClient(address: string, maxBytes = 64 << 20): WorkerNodeServiceClient {
  return new WorkerNodeServiceClient(address, insecure(), messageSizeOptions(maxBytes));
}

/**
 * Pushes a task as the pool would: registered with devpool first (so the pool knows
 * it and takes its result), then ExecuteTask on the gateway directly, again while the
 * node says it is busy. Devpool's own dispatch is switched off in the benchmarks (a huge
 * DEVPOOL_DISPATCH_INTERVAL), so only the worker is measured. Returns how many offers the
 * node refused as busy.
 *
 * `slotFreed` waits until a slot may have freed (by default 25 ms); when it says
 * 'freed' (a result just reached the pool, and the node releases the task's slot once the
 * pool has answered the upload), a refusal is retried every 2 ms for up to 50 ms, since the
 * release is a few milliseconds behind.
 */
export async function push(
  pool: PoolClient,
  worker: WorkerNodeServiceClient,
  taskId: string,
  zip: Buffer,
  req: Partial<ExecuteTaskRequest> = {},
  slotFreed: () => Promise<'freed' | 'timeout'> = () => new Promise((r) => setTimeout(() => r('timeout'), 25)),
): Promise<number> {
  const up = await uploadTask(pool, taskId, zip);
  if (!up.success) throw new Error(`devpool refused ${taskId}: ${up.message}`);
  let refused = 0;
  let retries = 0;
  let freed = false;
  for (;;) {
    const res = await unary(worker, worker.executeTask, executeRequest({ task_id: taskId, task_zip: zip, ...req }));
    if (res.success) return refused;
    if (!/busy|no executor/.test(res.message)) throw new Error(`gateway refused ${taskId}: ${res.message}`);
    refused++;
    if (freed && retries < 25) {
      retries++;
      await new Promise((r) => setTimeout(r, 2));
      continue;
    }
    retries = 0;
    freed = (await slotFreed()) === 'freed';
  }
}

/** Resident memory and CPU time of a process (and of its children it has waited for), from /proc. */
export async function procStat(pid: number): Promise<{ rssBytes: number; hwmBytes: number; cpuMs: number; childCpuMs: number }> {
  const [status, stat] = await Promise.all([fs.readFile(`/proc/${pid}/status`, 'utf8'), fs.readFile(`/proc/${pid}/stat`, 'utf8')]);
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  // Fields after the command name (which may hold spaces) start at index 2: utime is 13, stime 14.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const childTicks = Number(fields[13]) + Number(fields[14]);
  return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM'), cpuMs: (ticks * 1000) / 100, childCpuMs: (childTicks * 1000) / 100 };
}

/** CPU milliseconds the whole machine has spent busy (every core, every process and the kernel), from /proc/stat. */
export async function machineCpuMs(): Promise<number> {
  const line = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0];
  // cpu  user nice system idle iowait irq softirq steal ... (steal is another guest's time)
  const [user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user + nice + system + irq + softirq) * 1000) / 100;
}

/** Samples the RSS of some services every `everyMs` until stopped; keeps each one's peak. */
export class RssWatch {
  readonly peak = new Map<string, number>();
  private timer: NodeJS.Timeout;

  constructor(private readonly services: RunningService[], everyMs = 100) {
    this.timer = setInterval(() => void this.sample(), everyMs);
  }

  private async sample(): Promise<void> {
    for (const s of this.services) {
      if (!s.proc.pid || s.proc.exitCode !== null) continue;
      const st = await procStat(s.proc.pid).catch(() => null);
      if (st) this.peak.set(this.key(s), Math.max(this.peak.get(this.key(s)) ?? 0, st.rssBytes));
    }
  }

  key(s: RunningService): string {
    const same = this.services.filter((x) => x.name === s.name);
    return same.length > 1 ? `${s.name} #${same.indexOf(s) + 1}` : s.name;
  }

  stop(): Map<string, number> {
    clearInterval(this.timer);
    return this.peak;
  }
}

export const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MB`;

/** The same hardened container the executor runs, created straight through dockerode. */
export function bareRunner(docker: Docker, image: string, workspace: string, nanoCpus = 1e9) {
  const rt = new DockerRuntime(docker, { image, user: '10001:10001', pidsLimit: 256, tmpfsMb: 64, nodeId: 'bench', instance: 'hivemind-bench' });
  return async (id: string, command: string[]): Promise<void> => {
    const c = await docker.createContainer(
      rt.createOptions({
        taskId: id,
        workspace,
        command,
        env: { TASK_ID: id, RESULT_DIR: '/workspace/result', HOME: '/tmp' },
        limits: { nanoCpus, memoryBytes: 1024 ** 3 },
      }),
    );
    try {
      await c.start();
      await c.wait();
    } finally {
      await c.remove({ force: true });
    }
  };
}

/**
 * Wakes feeders when devpool receives a result (the node frees the task's slot as the
 * pool acknowledges it), one feeder per result, as a pool that dispatches on the node's
 * status would; with a 1 s fallback so a missed wake-up never stalls a feeder for long.
 * (A fallback of 100 ms, as before, had every waiting feeder re-offer ten times a
 * second: about five refused offers per task, each a whole admission at the gateway,
 * which the deployed pool, offering on a 10 s tick to nodes that report Idle, never does.)
 */
export class SlotSignal {
  private waiters: ((why: 'freed') => void)[] = [];

  constructor(devpool: RunningService) {
    devpool.proc.stdout?.on('data', (c: Buffer) => {
      const n = c.toString().split('"msg":"result received"').length - 1;
      for (let i = 0; i < n && this.waiters.length; i++) this.waiters.shift()?.('freed');
    });
  }

  readonly wait = (): Promise<'freed' | 'timeout'> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve('timeout');
      }, 1000);
      const wake = () => {
        clearTimeout(timer);
        resolve('freed');
      };
      this.waiters.push(wake);
    });
}
