import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { UnrecoverableError } from 'bullmq';
import IORedis from 'ioredis';
import pino from 'pino';
import { loadWorkerConfig } from '@hivemind/shared/config/worker-config';
import { ResultJob } from '@hivemind/shared/queue/queues';
import { EXECUTOR_PRUNE_MS, ExecutorBeat } from '@hivemind/shared/state/executors';
import { connectNodeState, NodeStateConnection } from '@hivemind/shared/state/node-state';
import { RedisKeys } from '@hivemind/shared/state/redis-keys';
import { REFUSED_RETRY_FIRST_MS } from '@hivemind/shared/state/refused-results';
import { FsTaskStore } from '@hivemind/shared/state/task-store';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import type { GatewayMetrics } from '../../apps/gateway/src/metrics/gateway-metrics.service';
import type { PoolLinkService } from '../../apps/gateway/src/pool/pool-link.service';
import { ResultUploadService } from '../../apps/gateway/src/results/result-upload.service';
import { TaskHistoryService } from '../../apps/gateway/src/results/task-history.service';
import { ResultRefusedError } from '../../apps/gateway/src/results/upload-failure';
import { makeZip } from '../support/zips';
import { redisUrl, uniquePrefix } from '../support/stack';

const node = { cpuCores: 2, cpuScore: 200, memoryGb: 4, gpuScore: 0, gpuMemoryGb: 0, maxTasks: 1 };
const share = { cpuScore: 10, memoryMb: 100, gpuScore: 0, gpuMemoryGb: 0 };
const job = (taskId: string): ResultJob => ({ taskId, status: 'Success', reason: 'exited with code 0', exitCode: 0, receivedAt: 1000, startedAt: 2000, finishedAt: 5000 });

/** The pool's side of TaskResultUpload, answered by the test, one answer per call. */
type Answer = { success: boolean; message: string } | Error;

describe('a result the pool refuses (ResultUploadService against real Redis and files)', () => {
  let state: NodeStateConnection;
  let dir: string;
  let uploads: ResultUploadService;
  let history: TaskHistoryService;
  let answers: Answer[];
  const counts = { refused: 0, givenUp: 0, failures: 0 };

  const setUp = async (env: Record<string, string>) => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-refused-'));
    const prefix = uniquePrefix('refused');
    state = connectNodeState(redisUrl(), prefix, 'test-refused');
    const config = loadWorkerConfig({ REDIS_PREFIX: prefix, WORK_DIR: dir, RESULT_UPLOAD_GUARD: '0', ...env });
    history = new TaskHistoryService(config, pino({ level: 'silent' }), state.running, state.history);
    const pool = {
      client: { workers: {} },
      call: async () => {
        const a = answers.shift();
        if (!a) throw new Error('no answer prepared');
        if (a instanceof Error) throw a;
        return a;
      },
    } as unknown as PoolLinkService;
    const inc = (k: keyof typeof counts) => ({ inc: () => void counts[k]++ });
    const metrics = { uploadAttempts: { inc: () => undefined }, uploadFailures: inc('failures'), uploadsRefused: inc('refused'), uploadsGivenUp: inc('givenUp'), taskFinished: () => undefined } as unknown as GatewayMetrics;
    const workDir = new WorkDir(dir);
    // TASK_STORE=fs, the default: the result zip is read from WORK_DIR.
    uploads = new ResultUploadService(config, pino({ level: 'silent' }), state.ledger, state.refused, state.tasks, state.control, pool, new FsTaskStore(), history, metrics, workDir);
    return workDir;
  };

  /** A held task whose executor left its result zip, as the results queue finds it. */
  const finishedTask = async (workDir: WorkDir, taskId: string) => {
    expect(await state.ledger.reserve(taskId, share, node)).toEqual({ ok: true });
    await state.tasks.replied(taskId);
    await fs.mkdir(path.dirname(workDir.result(taskId)), { recursive: true });
    await fs.writeFile(workDir.result(taskId), await makeZip([{ name: 'task_logs.txt', content: 'hello\n' }]));
  };

  beforeEach(() => {
    answers = [];
    Object.assign(counts, { refused: 0, givenUp: 0, failures: 0 });
  });
  afterEach(async () => {
    await state.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a failure the pool could not help keeps the slot; a refusal frees it, keeps the result, and a later success records it', async () => {
    const workDir = await setUp({});
    await finishedTask(workDir, 'r1');
    const unavailable = Object.assign(new Error('14 UNAVAILABLE: down'), { code: status.UNAVAILABLE, details: 'down', metadata: new Metadata() });
    answers.push(unavailable);
    await expect(uploads.upload(job('r1'))).rejects.toThrow('UNAVAILABLE');
    expect(await state.ledger.holds('r1')).toBe(true);
    expect(await uploads.refused.count()).toBe(0);

    answers.push({ success: false, message: 'unknown task r1' });
    const t0 = Date.now();
    const err = await uploads.upload(job('r1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResultRefusedError);
    expect((err as ResultRefusedError).retryInMs).toBe(REFUSED_RETRY_FIRST_MS);
    // The slot is free at once: a node with one slot can take the next task.
    expect(await state.ledger.holds('r1')).toBe(false);
    expect(await state.ledger.reserve('next', share, node)).toEqual({ ok: true });
    const entry = await uploads.refused.get('r1');
    expect(entry).toMatchObject({ taskId: 'r1', refusals: 1, message: 'unknown task r1' });
    expect(entry!.until).toBeGreaterThanOrEqual(t0 + 86_400_000);
    await fs.access(workDir.result('r1'));
    expect(counts).toEqual({ refused: 1, givenUp: 0, failures: 2 });

    // A second refusal waits twice as long; the deadline stays the first one's.
    answers.push({ success: false, message: 'unknown task r1' });
    const err2 = (await uploads.upload(job('r1')).catch((e: unknown) => e)) as ResultRefusedError;
    expect(err2.retryInMs).toBe(2 * REFUSED_RETRY_FIRST_MS);
    expect(await uploads.refused.get('r1')).toMatchObject({ refusals: 2, until: entry!.until });

    answers.push({ success: true, message: 'stored' });
    await uploads.upload(job('r1'));
    expect(await uploads.refused.count()).toBe(0);
    await expect(fs.access(workDir.result('r1'))).rejects.toThrow();
    expect(await state.tasks.get('r1')).toBeNull();
    const h = await history.get('r1');
    expect(h).toMatchObject({ taskId: 'r1', delivery: 'uploaded', refused: { refusals: 2, message: 'unknown task r1' } });
    expect(h!.uploadedAt).toEqual(expect.any(Number));
    // The task that took the freed slot still holds it.
    expect(await state.ledger.holds('next')).toBe(true);
  });

  it('a refusal after RESULT_REFUSED_RETRY gives the result up: recorded as given up, its file deleted', async () => {
    const workDir = await setUp({ RESULT_REFUSED_RETRY: '0.3' });
    await finishedTask(workDir, 'r2');
    answers.push({ success: false, message: 'unknown task r2' });
    const err = (await uploads.upload(job('r2')).catch((e: unknown) => e)) as ResultRefusedError;
    expect(err).toBeInstanceOf(ResultRefusedError);
    expect(err.retryInMs).toBeLessThanOrEqual(300);
    await new Promise((r) => setTimeout(r, 400));
    answers.push({ success: false, message: 'unknown task r2' });
    await expect(uploads.upload(job('r2'))).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(fs.access(workDir.result('r2'))).rejects.toThrow();
    expect(await uploads.refused.count()).toBe(0);
    expect(await state.tasks.get('r2')).toBeNull();
    expect(await history.get('r2')).toMatchObject({ delivery: 'given_up', uploadedAt: null, refused: { refusals: 2 } });
    // A result the pool never took earns no estimate.
    expect(await history.estimatedTotal()).toEqual({ total: 0, tasks: 0 });
    expect(counts.givenUp).toBe(1);
  });

  it('RESULT_REFUSED_RETRY=0 gives up at the first refusal', async () => {
    const workDir = await setUp({ RESULT_REFUSED_RETRY: '0' });
    await finishedTask(workDir, 'r3');
    answers.push({ success: false, message: 'no' });
    await expect(uploads.upload(job('r3'))).rejects.toBeInstanceOf(UnrecoverableError);
    expect(await state.ledger.holds('r3')).toBe(false);
    expect(await history.get('r3')).toMatchObject({ delivery: 'given_up', refused: { refusals: 1 } });
  });
});

describe('pruning crashed executors from the executors hash', () => {
  let state: NodeStateConnection;
  let redis: IORedis;
  let prefix: string;
  beforeEach(() => {
    prefix = uniquePrefix('prune');
    state = connectNodeState(redisUrl(), prefix, 'test-prune');
    redis = new IORedis(redisUrl());
  });
  afterEach(async () => {
    await state.close();
    await redis.quit();
  });

  it('removes entries whose beat is older than EXECUTOR_PRUNE_MS (and unreadable ones), keeps the rest', async () => {
    const now = Date.now();
    const beat = (id: string, seenAt: number): ExecutorBeat => ({ executorId: id, runtime: 'docker', docker: 'available', running: 0, concurrency: 1, seenAt });
    await state.executors.beat(beat('crashed', now - EXECUTOR_PRUNE_MS - 1000));
    await state.executors.beat(beat('alive', now - 1000));
    await state.executors.beat(beat('quiet', now - 60_000));
    // Raw: an unreadable entry, which Executors.beat (schema-checked) cannot write.
    await redis.hset(new RedisKeys(prefix).executors, 'junk', 'not json');
    expect((await state.executors.prune(now)).sort()).toEqual(['crashed', 'junk']);
    expect((await state.executors.all()).map((b) => b.executorId).sort()).toEqual(['alive', 'quiet']);
    // Nothing left to prune: the unreadable entry is gone too.
    expect(await state.executors.prune(now)).toEqual([]);
  });
});
