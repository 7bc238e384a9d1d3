import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import Docker from 'dockerode';
import IORedis from 'ioredis';
import type { ExecutorBeat } from '@hivemind/shared/state/executors';
import { NodeStateConnection } from '@hivemind/shared/state/node-state';
import { RedisKeys } from '@hivemind/shared/state/redis-keys';
import { nodeStateOf } from '../support/node-state';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { RunningService, Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip } from '../support/zips';

/** One output entry's text at most (apps/executor/src/output-sink.ts), in bytes. */
const MAX_ENTRY_BYTES = 10_240;
/** The stream's MAXLEN, and the slack `MAXLEN ~` allows (one stream node of 100 entries). */
const STREAM_MAXLEN = 5_000 + 100;
const HEAD_KB = 1024;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
// Task ids (and so container names) of this file's own, beside other tests on the machine.
const run = randomBytes(3).toString('hex');
const FLOOD = `out-flood-${run}`;
const SMALL = `out-small-${run}`;
const LONG = `out-long-${run}`;
const TAIL_KB = 1024;

/**
 * Tasks whose output is hostile to the worker: a flood of empty lines (the log tail once
 * held one Buffer per line and stalled the executor for minutes), and very long lines
 * (each output-stream entry once kept its last line whole, up to 64 KiB).
 */
describe('hostile output', () => {
  let stack: Stack;
  let pool: PoolClient;
  // Raw: the whole output stream as it sits in Redis (entry sizes, every field), which no repository lists.
  let redis: IORedis;
  let state: NodeStateConnection;
  let executor: RunningService;

  beforeAll(async () => {
    stack = await Stack.create('hostile-output', {
      MAX_CONCURRENT_TASKS: '2',
      TASK_DEFAULT_CPUS: '1',
      TASK_LOG_HEAD_KB: String(HEAD_KB),
      TASK_LOG_TAIL_KB: String(TAIL_KB),
      STOP_GRACE_PERIOD: '1',
      LOG_LEVEL: 'info',
    });
    await stack.startAll();
    executor = stack.services.find((s) => s.name === 'executor')!;
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
    redis = new IORedis(stack.env.REDIS_URL, { maxRetriesPerRequest: null });
    state = nodeStateOf(stack);
  });

  afterAll(async () => {
    for (const s of stack?.services ?? []) if (s.name === 'devpool') s.proc.kill('SIGCONT');
    redis?.disconnect();
    await state?.close();
    pool?.close();
    await stack?.stopAll();
    // An executor killed while its task ran leaves the container: remove what is left of ours.
    for (const id of [FLOOD, SMALL, LONG]) await docker.getContainer(`hivemind-task-${id}`).remove({ force: true }).catch(() => undefined);
    if (stack) await fs.rm(stack.dir, { recursive: true, force: true }).catch(() => undefined);
  });

  async function start(taskId: string, content: string): Promise<void> {
    expect(await uploadTask(pool, taskId, await makeZip([{ name: 'main.py', content }]))).toEqual({ success: true, message: `task ${taskId} uploaded` });
  }

  async function result(taskId: string): Promise<{ exec: string; logs: string }> {
    const files = await waitFor(`the result of ${taskId}`, async () => {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
      return res.success ? unzip(Buffer.from(res.result_zip)) : null;
    }, 120_000);
    return { exec: files.get('execution_log.txt')!.data.toString(), logs: files.get('task_logs.txt')!.data.toString() };
  }

  async function executorBeat(): Promise<ExecutorBeat | null> {
    const beats = await state.executors.all();
    return beats.length === 1 ? beats[0] : null;
  }

  async function readyStatus(): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${executor.httpPort}/health/ready`, { signal: AbortSignal.timeout(10_000) }).catch(() => null);
    return res?.status ?? 0;
  }

  it('a task flooding empty lines leaves the executor beating, healthy and running other tasks; its log keeps head and tail', async () => {
    const flood = [
      'import sys, time',
      'print("FLOOD-START", flush=True)',
      't = time.time()',
      'while time.time() - t < 20:',
      "    sys.stdout.write('\\n' * 65536)",
      'sys.stdout.flush()',
      'print("FLOOD-END", flush=True)',
    ].join('\n');
    await start(FLOOD, flood);
    await waitForStatus(pool, FLOOD, ['RUNNING'], 120_000);
    // Well into the flood (the tail fills in the first megabytes).
    await new Promise((r) => setTimeout(r, 4000));
    await start(SMALL, 'print("small done")\n');

    // While it floods: the beat stays fresh (it is written every 5 s) and /health/ready answers.
    const seen: { beatAgeS: number; ready: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const beat = await executorBeat();
      seen.push({ beatAgeS: beat ? Math.round((Date.now() - beat.seenAt) / 1000) : -1, ready: await readyStatus() });
      await new Promise((r) => setTimeout(r, 1500));
    }
    // Generous: 5 s between beats, on a busy machine.
    for (const s of seen) expect({ fresh: s.beatAgeS >= 0 && s.beatAgeS < 20, ready: s.ready }).toEqual({ fresh: true, ready: 200 });

    // A second task submitted during the flood completes.
    expect((await waitForStatus(pool, SMALL, ['COMPLETED', 'FAILED'], 120_000)).status).toBe('COMPLETED');
    expect((await result(SMALL)).logs).toContain('small done');

    expect((await waitForStatus(pool, FLOOD, ['COMPLETED', 'FAILED', 'STOPPED'], 240_000)).status).toBe('COMPLETED');
    const r = await result(FLOOD);
    expect(r.exec).toContain('Status: Success');
    // task_logs.txt: the head, one marker with what was dropped, and the tail.
    expect(r.logs.startsWith('FLOOD-START\n\n')).toBe(true);
    const marker = /\n\[hivemind: (\d+) bytes \((\d+) lines\) of output dropped here; the head and the tail are kept\]\n\n/.exec(r.logs);
    expect(marker).not.toBeNull();
    // Every dropped line was empty: as many bytes as lines.
    expect(Number(marker![1])).toBe(Number(marker![2]));
    expect(Number(marker![1])).toBeGreaterThan(10 * 1024 * 1024);
    expect(r.logs.indexOf('FLOOD-END')).toBeGreaterThan(marker!.index);
    expect(Buffer.byteLength(r.logs)).toBeLessThanOrEqual((HEAD_KB + TAIL_KB) * 1024 + 64 * 1024);
  }, 600_000);

  it('very long lines, with and without newlines, keep every output entry under 10,240 bytes while the pool is away', async () => {
    const long = [
      'import sys, time',
      't = time.time()',
      'while time.time() - t < 12:',
      "    sys.stdout.write('x' * 1_000_000)",
      "    sys.stdout.write('y' * 200_000 + '\\n')",
      '    sys.stdout.flush()',
      '    time.sleep(0.05)',
      'print("LONG-END", flush=True)',
    ].join('\n');
    const key = new RedisKeys(stack.env.REDIS_PREFIX).output; // read raw, see `redis`
    await start(LONG, long);
    await waitForStatus(pool, LONG, ['RUNNING'], 120_000);
    // The pool stops answering: the gateway cannot relay, so entries stay in the stream.
    const devpool = stack.services.find((s) => s.name === 'devpool')!;
    devpool.proc.kill('SIGSTOP');
    let entries: [string, string[]][] = [];
    try {
      await new Promise((r) => setTimeout(r, 8000));
      entries = (await redis.xrange(key, '-', '+')).filter(([, f]) => f[f.indexOf('task') + 1] === LONG);
    } finally {
      devpool.proc.kill('SIGCONT');
    }
    expect(entries.length).toBeGreaterThan(3);
    const sizes = entries.map(([, f]) => Buffer.byteLength(f[f.indexOf('text') + 1]));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
    // The whole stream (every field of every entry) within MAXLEN × (entry bound + its other fields).
    const all = await redis.xrange(key, '-', '+');
    const total = all.reduce((n, [id, f]) => n + id.length + f.reduce((m, v) => m + Buffer.byteLength(v), 0), 0);
    expect(all.length).toBeLessThanOrEqual(STREAM_MAXLEN);
    expect(total).toBeLessThanOrEqual(all.length * (MAX_ENTRY_BYTES + 256));
    // A cut line says so.
    expect(entries.some(([, f]) => /\[hivemind: \d+ characters of this line cut in the live view\]/.test(f[f.indexOf('text') + 1]))).toBe(true);

    expect((await waitForStatus(pool, LONG, ['COMPLETED', 'FAILED', 'STOPPED'], 240_000)).status).toBe('COMPLETED');
    const r = await result(LONG);
    expect(r.logs).toContain('LONG-END');
    expect(Buffer.byteLength(r.logs)).toBeLessThanOrEqual((HEAD_KB + TAIL_KB) * 1024 + 64 * 1024 * 3 + 1024);
  }, 600_000);
});
