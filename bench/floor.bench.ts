/**
 * 12. The floor of the worker's design: what the hops every task takes cost, with nothing
 *     else in them. A pool process calls ExecuteTask (a small zip) on a gateway process,
 *     which queues a BullMQ job and answers; an executor process takes the job and queues
 *     a result job; the gateway takes that and calls TaskResultUpload on the pool. No
 *     admission, no container, no files: two gRPC calls and two BullMQ hops through Redis,
 *     as the architecture has them (gateway and executors as separate processes, Redis
 *     between them). CPU ms per task by process, beside the same container loop the
 *     throughput benchmark uses as its ceiling.
 */
import { execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { Job, Queue, Worker } from 'bullmq';
import { bullConnection } from '@hivemind/shared/queue/queues';
import { ExecuteTaskRequest, TaskResultUploadRequest, WorkerNodeServiceClient, WorkerNodeServiceService } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, unary } from '@hivemind/shared/proto/grpc';
import { ROOT } from '../test/support/stack';
import { makeZip } from '../test/support/zips';
import { machineCpuMs, procStat } from './lib/harness';
import { machine, writeSection } from './lib/report';

const N = Number(process.env.BENCH_FLOOR_N ?? 1000);
/** Tasks in flight at once, as in the throughput benchmark. */
const C = 4;
const REDIS = process.env.TEST_REDIS_URL ?? '';
const PREFIX = `bench-floor-${process.pid}`;
const connection = (name: string) => bullConnection(REDIS, name);

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
}

/** The executor's hop: each task job becomes a result job. */
async function executor(): Promise<void> {
  const prefix = process.argv[3];
  const results = new Queue('results', { connection: connection('floor-executor-results'), prefix });
  const worker = new Worker(
    'tasks',
    async (job: Job<{ taskId: string }>) => {
      await results.add('result', { taskId: job.data.taskId, status: 'Success', reason: 'exited with code 0' }, { jobId: job.data.taskId, removeOnComplete: true, removeOnFail: true });
    },
    { connection: connection('floor-executor-tasks'), prefix, concurrency: C },
  );
  process.send?.('ready');
  process.on('message', () => void Promise.all([worker.close(), results.close()]).then(() => process.exit(0)));
}

/** The gateway's hops: ExecuteTask to a task job; a result job to TaskResultUpload. */
async function gateway(): Promise<void> {
  const [, , , prefix, poolPort] = process.argv;
  const tasks = new Queue('tasks', { connection: connection('floor-gateway-tasks'), prefix });
  const pool = new WorkerNodeServiceClient(`127.0.0.1:${poolPort}`, insecure());
  const result = await makeZip([{ name: 'result/out.txt', content: 'done\n' }]);
  const worker = new Worker(
    'results',
    async (job: Job<{ taskId: string }>) => {
      const res = await unary(pool, pool.taskResultUpload, { task_id: job.data.taskId, result_zip: result, token: 'bench' });
      if (!res.success) throw new Error(res.message);
    },
    { connection: connection('floor-gateway-results'), prefix, concurrency: C },
  );
  const server = new Server();
  server.addService(WorkerNodeServiceService, {
    executeTask: (call: { request: ExecuteTaskRequest }, cb: (e: null, r: { success: boolean; message: string }) => void) => {
      void tasks.add('task', { taskId: call.request.task_id, bytes: call.request.task_zip.length }, { jobId: call.request.task_id, removeOnComplete: true, removeOnFail: true }).then(
        () => cb(null, { success: true, message: 'accepted' }),
      );
    },
  });
  const port = await listen(server);
  process.send?.({ port });
  process.on('message', () => void Promise.all([worker.close(), tasks.close()]).then(() => server.forceShutdown()).then(() => process.exit(0)));
}

function start(role: string, ...args: string[]): Promise<{ proc: ReturnType<typeof fork>; msg: unknown }> {
  const proc = fork(__filename, [role, ...args], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    proc.once('message', (msg) => resolve({ proc, msg }));
    proc.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
}

const cpu = (pid: number) => procStat(pid).then((s) => s.cpuMs);
const redisPid = () => Number(execFileSync('pidof', ['redis-server']).toString().trim().split(/\s+/)[0]);

async function main(): Promise<void> {
  if (!REDIS) throw new Error('TEST_REDIS_URL must name the Redis to use (scripts/bench.sh starts one)');
  // The pool: serves TaskResultUpload, and wakes the task's chain when its result lands.
  const done = new Map<string, () => void>();
  const poolServer = new Server();
  poolServer.addService(WorkerNodeServiceService, {
    taskResultUpload: (call: { request: TaskResultUploadRequest }, cb: (e: null, r: { success: boolean; message: string }) => void) => {
      cb(null, { success: true, message: 'stored' });
      done.get(call.request.task_id)?.();
    },
  });
  const poolPort = await listen(poolServer);
  const exec = await start('executor', PREFIX);
  const gw = await start('gateway', PREFIX, String(poolPort));
  const gwClient = new WorkerNodeServiceClient(`127.0.0.1:${(gw.msg as { port: number }).port}`, insecure());
  const zip = await makeZip([{ name: 'run.py', content: 'pass\n' }, { name: 'data.bin', content: randomBytes(512) }]);
  const one = async (taskId: string) => {
    const finished = new Promise<void>((r) => done.set(taskId, r));
    const res = await unary(gwClient, gwClient.executeTask, { task_id: taskId, task_zip: zip, cpu_usage: 0, gpu_usage: 0, memory_gb: 0, gpu_memory_gb: 0 });
    if (!res.success) throw new Error(res.message);
    await finished;
    done.delete(taskId);
  };
  const chains = async (n: number, tag: string) => {
    let next = 0;
    await Promise.all(Array.from({ length: C }, async () => {
      while (next < n) await one(`${tag}-${next++}`);
    }));
  };
  await chains(100, 'warm');
  const pids = { pool: process.pid, gateway: gw.proc.pid!, executor: exec.proc.pid!, 'redis-server': redisPid() };
  const before = await Promise.all(Object.values(pids).map(cpu));
  const m0 = await machineCpuMs();
  const t0 = performance.now();
  await chains(N, 'run');
  const seconds = (performance.now() - t0) / 1000;
  const m1 = await machineCpuMs();
  const after = await Promise.all(Object.values(pids).map(cpu));
  const per = Object.keys(pids).map((k, i) => [k, (after[i] - before[i]) / N] as const);
  for (const p of [exec.proc, gw.proc]) p.send('stop');
  gwClient.close();
  poolServer.forceShutdown();
  const total = per.reduce((a, [, v]) => a + v, 0);
  const body = [
    '## 12. The floor of the design',
    '',
    `${N} tasks, ${C} at a time, through nothing but the hops every task takes: ExecuteTask (a`,
    `${zip.length}-byte zip) from a pool process to a gateway process, which queues a BullMQ job and`,
    'answers; an executor process that takes the job and queues a result job; the gateway taking',
    'that and calling TaskResultUpload on the pool. No admission, no container, no files, no logs.',
    '',
    '| process | CPU ms per task |',
    '|---|---|',
    ...per.map(([k, v]) => `| ${k} | ${v.toFixed(1)} |`),
    `| **all four** | **${total.toFixed(1)}** |`,
    `| whole machine (/proc/stat) | ${((m1 - m0) / N).toFixed(1)} |`,
    '',
    `${(N / seconds).toFixed(0)} tasks/s. What the worker spends per task in the throughput benchmark`,
    'beyond these figures is its own work around the hops (admission, workspace, container, result),',
    'not the hops between its processes.',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}.`,
  ].join('\n');
  await writeSection(ROOT, 'floor', body);
  console.log(body);
  process.exit(0);
}

const role = process.argv[2];
const entry = role === 'executor' ? executor() : role === 'gateway' ? gateway() : main();
entry.catch((err) => {
  console.error(err);
  process.exit(1);
});
