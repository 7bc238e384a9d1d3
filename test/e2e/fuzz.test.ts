import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ServiceError } from '@grpc/grpc-js';
import { ExecuteTaskRequest, WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { Stack } from '../support/stack';
import { makeZip } from '../support/zips';

/**
 * Hostile input at ExecuteTask: random bytes, truncated and bit-flipped zips, absurd
 * numbers and ids. Every request must get a clear refusal or a correct admission,
 * the gateway must stay up, and its memory must not grow past warm-up.
 * FUZZ_COUNT sets the number of requests (npm run fuzz runs a long one).
 */
const COUNT = Number(process.env.FUZZ_COUNT ?? 1500);
const CONCURRENCY = 8;

let seed = Number(process.env.FUZZ_SEED ?? Date.now() % 100000);
const rnd = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
const int = (n: number) => Math.floor(rnd() * n);

const ABSURD_FLOATS = [NaN, Infinity, -Infinity, -1, -0, 1e38, 3.4e38, 1e-30, 0.5, 0];
const ABSURD_INTS = [-2147483648, 2147483647, -1, 0, 1, 999999];
const HOSTILE_IDS = ['x'.repeat(10 * 1024), '任务-1', 'a\u0000b', '../../etc/passwd', '', ' ', '🚀', 'ok;rm -rf /', 'A'.repeat(65), '\n'];

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

describe('fuzzing ExecuteTask', () => {
  let stack: Stack;
  let worker: WorkerNodeServiceClient;

  beforeAll(async () => {
    stack = await Stack.create('fuzz', { ZIP_MAX_ENTRIES: '50', ZIP_MAX_UNCOMPRESSED_MB: '4', LOG_LEVEL: 'info' });
    await stack.start('devpool');
    await stack.start('executor');
    await stack.start('gateway');
    worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
  });

  afterAll(async () => {
    worker?.close();
    await stack?.stopAll();
  });

  it(`answers ${COUNT} hostile requests with refusals or admissions, stays up, and does not grow`, async () => {
    const valid = await makeZip([
      { name: 'run.py', content: 'print("fuzz")' },
      { name: 'data/a.txt', content: 'a'.repeat(300) },
      { name: 'data/b.txt', content: 'b'.repeat(300) },
    ]);
    const gens: Record<string, (i: number) => Partial<ExecuteTaskRequest>> = {
      'random bytes': () => ({ task_zip: randomBytes(int(8192)) }),
      'truncated zip': () => ({ task_zip: valid.subarray(0, int(valid.length)) }),
      'bit-flipped zip': () => {
        const z = Buffer.from(valid);
        for (let k = 1 + int(16); k > 0; k--) z[int(z.length)] ^= 1 << int(8);
        return { task_zip: z };
      },
      'overwritten zip': () => {
        const z = Buffer.from(valid);
        const at = int(z.length);
        randomBytes(Math.min(64, z.length - at)).copy(z, at);
        return { task_zip: z };
      },
      'absurd resources': () => ({
        task_zip: valid,
        cpu_usage: pick(ABSURD_FLOATS),
        gpu_usage: pick(ABSURD_FLOATS),
        memory_gb: pick(ABSURD_INTS),
        gpu_memory_gb: pick(ABSURD_INTS),
      }),
      'hostile id': () => ({ task_id: pick(HOSTILE_IDS), task_zip: valid }),
    };
    const names = Object.keys(gens);
    const outcomes = new Map<string, number>();
    const failures: string[] = [];
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    const gatewayPid = stack.services.find((s) => s.name === 'gateway')!.proc.pid!;

    let next = 0;
    let warmRss = 0;
    const warmup = Math.floor(COUNT / 5);
    const one = async (i: number) => {
      const gen = names[i % names.length];
      const req: ExecuteTaskRequest = { task_id: `fz-${i}`, task_zip: Buffer.alloc(0), cpu_usage: 0, gpu_usage: 0, memory_gb: 0, gpu_memory_gb: 0, ...gens[gen](i) };
      try {
        const res = await unary(worker, worker.executeTask, req, undefined, 30_000);
        if (res.success) count('accepted');
        else if (res.message.trim().length > 10) count(`refused: ${res.message.replace(/[0-9]+/g, 'N').split(/[:;"]/)[0].slice(0, 60)}`);
        else failures.push(`${gen}: refusal without a clear message: "${res.message}"`);
      } catch (err) {
        failures.push(`${gen}: RPC error ${(err as ServiceError).code} ${(err as ServiceError).details}`);
      }
    };
    const runUntil = async (end: number) => {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < end) await one(next++);
        }),
      );
    };
    await runUntil(warmup);
    await new Promise((r) => setTimeout(r, 1000));
    warmRss = rssMb(gatewayPid);
    const series: number[] = [];
    for (let step = 1; step <= 10; step++) {
      await runUntil(warmup + Math.round(((COUNT - warmup) * step) / 10));
      series.push(Math.round(rssMb(gatewayPid)));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const endRss = rssMb(gatewayPid);

    const summary = [...outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${String(v).padStart(6)}  ${k}`).join('\n');
    console.log(
      `fuzz: ${COUNT} requests, seed ${process.env.FUZZ_SEED ?? '(time)'}; ${failures.length} failures\n${summary}\n` +
        `gateway RSS: ${warmRss.toFixed(1)} MB after ${warmup} warm-up requests, ${endRss.toFixed(1)} MB after all; ` +
        `by tenths of the run: ${series.join(' ')} MB`,
    );
    expect(failures.slice(0, 10)).toEqual([]);
    expect(stack.services.find((s) => s.name === 'gateway')!.proc.exitCode).toBeNull();
    // Still serving: a well-formed request gets its normal answer.
    expect(await unary(worker, worker.executeTask, { task_id: 'bad id', task_zip: valid, cpu_usage: 0, gpu_usage: 0, memory_gb: 0, gpu_memory_gb: 0 })).toEqual({
      success: false,
      message: 'task_id may only contain letters, digits, "_" and "-"',
    });
    // Within noise: GC timing moves RSS by a few tens of MB either way.
    expect(endRss).toBeLessThan(warmRss * 1.25 + 30);
  });
});
