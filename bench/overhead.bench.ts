/**
 * Per-task overhead: a no-op task's time from ExecuteTask received at the gateway to
 * its result ready (queued for upload), against a bare dockerode create / start /
 * wait / remove of the same hardened container. Both run interleaved in the same
 * session so machine noise hits them alike; the figure is the ratio of medians.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Job, QueueEvents, Queue } from 'bullmq';
import Docker from 'dockerode';
import { bullOptions, QueueName } from '@hivemind/shared/queue/queues';
import { executeRequest, ownerClient, taskInfo, uploadTask } from '../test/support/pool';
import { makeZip } from '../test/support/zips';
import { ROOT, Stack } from '../test/support/stack';
import { bareRunner, gatewayClient } from './lib/harness';
import { unary } from '@hivemind/shared/proto/grpc';
import { machine, writeSection } from './lib/report';
import { row, summarize } from './lib/stats';

const N = Number(process.env.BENCH_N ?? 15);
const WARMUP = 2;
const NOOP = 'pass\n';

async function main(): Promise<void> {
  // The upload guard keeps the result job around long enough to read its timestamp; it
  // starts after the measured span ends (result queued), so it does not change the figure.
  const stack = await Stack.create('bench-overhead', { LOG_LEVEL: 'info', DEVPOOL_DISPATCH_INTERVAL: '0.1', RESULT_UPLOAD_GUARD: '1' });
  await stack.start('devpool');
  await stack.start('executor');
  await stack.start('gateway');
  const site = { REDIS_URL: stack.env.REDIS_URL, REDIS_PREFIX: stack.env.REDIS_PREFIX };
  const results = new Queue(QueueName.Results, bullOptions(site, 'bench-results'));
  const events = new QueueEvents(QueueName.Results, bullOptions(site, 'bench-results-events'));
  await events.waitUntilReady();
  const pool = ownerClient(stack.devpoolAddress);
  const zip = await makeZip([{ name: 'run.py', content: NOOP }]);

  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  const ws = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-bench-ws-'));
  await fs.writeFile(path.join(ws, 'run.py'), NOOP);
  await fs.chmod(ws, 0o777);

  async function viaWorker(i: number): Promise<number> {
    const taskId = `noop-${i}`;
    const ready = new Promise<number>((resolve) => {
      const onAdded = async ({ jobId }: { jobId: string }) => {
        if (jobId !== taskId) return;
        events.off('added', onAdded);
        const job = (await Job.fromId(results, taskId)) as Job;
        resolve(job.timestamp - job.data.receivedAt);
      };
      events.on('added', onAdded);
    });
    const up = await uploadTask(pool, taskId, zip);
    if (!up.success) throw new Error(up.message);
    const ms = await ready;
    // Wait for the upload, so the next task finds the node free.
    for (;;) {
      const t = await taskInfo(pool, taskId);
      if (t?.status === 'COMPLETED') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return ms;
  }

  const runBare = bareRunner(docker, stack.env.TASK_IMAGE ?? 'hivemind/task-runtime:latest', ws);
  async function bare(i: number): Promise<number> {
    const t0 = performance.now();
    await runBare(`bare-${i}`, ['python3', '-u', 'run.py']);
    return performance.now() - t0;
  }

  const worker: number[] = [];
  const raw: number[] = [];
  try {
    for (let i = 0; i < WARMUP + N; i++) {
      const w = await viaWorker(i);
      const b = await bare(i);
      if (i >= WARMUP) {
        worker.push(w);
        raw.push(b);
      }
      process.stderr.write(`  run ${i + 1}/${WARMUP + N}: worker ${w.toFixed(0)} ms, bare ${b.toFixed(0)} ms\n`);
    }
    const ws_ = summarize(worker);
    const bs = summarize(raw);
    const ratio = ws_.median / bs.median;
    const ratios = summarize(worker.map((w, i) => w / raw[i]));
    const body = [
      '## 1. Per-task overhead',
      '',
      'No-op Python task (`run.py` = `pass`), from ExecuteTask received at the gateway to its result',
      'queued for upload (the upload guard is not part of this span), against a bare dockerode',
      'create / start / wait / remove of the same hardened container (same image, user, limits,',
      `bind mount, \`NetworkDisabled\`). ${N} interleaved pairs after ${WARMUP} warm-up pairs.`,
      'The worker removes the container only after the result is queued (so that a successor can',
      'adopt it after a crash), so that removal falls outside its span but inside the baseline\'s.',
      '',
      '| path | n | median | p25 – p75 | min – max |',
      '|---|---|---|---|---|',
      row('gateway → executor → result zip', ws_),
      row('bare dockerode run', bs),
      '',
      `**Ratio of medians: ${ratio.toFixed(2)}×** (target ≤ 1.10×; per-pair ratios: median ${ratios.median.toFixed(2)},` +
        ` p25–p75 ${ratios.p25.toFixed(2)}–${ratios.p75.toFixed(2)}). ${ratio <= 1.1 ? 'Target met.' : '**Target missed.**'}`,
      '',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}.`,
    ].join('\n');
    await writeSection(ROOT, 'overhead', body);
    console.log(body);

  } finally {
    pool.close();
    await events.close();
    await results.close();
    await stack.destroy();
    await fs.rm(ws, { recursive: true, force: true });
  }
}

/** 3. Python hello-world: print, write a result file; ExecuteTask sent to result uploaded. */
async function helloWorld(): Promise<void> {
  const hello = await makeZip([{ name: 'main.py', content: 'import os\nprint("hello, world")\nopen(os.path.join(os.environ["RESULT_DIR"], "out.txt"), "w").write("hi")\n' }]);
  const stack = await Stack.create('bench-hello', { LOG_LEVEL: 'info', DEVPOOL_DISPATCH_INTERVAL: '100000', RESULT_UPLOAD_GUARD: '0' });
  await stack.startAll();
  const pool = ownerClient(stack.devpoolAddress);
  const gateway = gatewayClient(stack.gatewayAddress);
  const helloMs: number[] = [];
  try {
    for (let i = 0; i < WARMUP + N; i++) {
      const taskId = `hello-${i}`;
      const up = await uploadTask(pool, taskId, hello);
      if (!up.success) throw new Error(up.message);
      const sent = Date.now();
      const res = await unary(gateway, gateway.executeTask, executeRequest({ task_id: taskId, task_zip: hello }));
      if (!res.success) throw new Error(res.message);
      for (;;) {
        const t = await taskInfo(pool, taskId);
        if (t?.status === 'COMPLETED') break;
        await new Promise((r) => setTimeout(r, 10));
      }
      // The gateway logs the upload once the pool has acknowledged it: wait for that line.
      let uploaded = NaN;
      while (Number.isNaN(uploaded)) {
        const line = stack.services.find((s) => s.name === 'gateway')!.output().split('\n').find((l) => l.includes(`"taskId":"${taskId}"`) && l.includes('"msg":"result uploaded"'));
        uploaded = Number(/"time":(\d+)/.exec(line ?? '')?.[1]);
        if (Number.isNaN(uploaded)) await new Promise((r) => setTimeout(r, 10));
      }
      if (i >= WARMUP) helloMs.push(uploaded - sent);
    }
  } finally {
    gateway.close();
    pool.close();
    await stack.destroy();
  }
  const hs = summarize(helloMs);
  const helloBody = [
    '## 3. Python hello-world',
    '',
    'A task that prints a line and writes a file to `RESULT_DIR`, from ExecuteTask sent to the gateway',
    `to its result uploaded to devpool (upload guard off; the upload's time from the gateway's log),`,
    `${N} runs after ${WARMUP} warm-ups.`,
    '',
    '| n | median | p25 – p75 | min – max |',
    '|---|---|---|---|',
    `| ${hs.n} | **${hs.median.toFixed(0)} ms** | ${hs.p25.toFixed(0)} – ${hs.p75.toFixed(0)} ms | ${hs.min.toFixed(0)} – ${hs.max.toFixed(0)} ms |`,
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}.`,
  ].join('\n');
  await writeSection(ROOT, 'hello', helloBody);
  console.log(helloBody);
}

main()
  .then(helloWorld)
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
