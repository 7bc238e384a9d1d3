import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Browser, chromium } from 'playwright-core';
import { WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, unary } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ExecutorBeat } from '@hivemind/shared/state/executors';
import { NodeStateConnection } from '@hivemind/shared/state/node-state';
import { executeRequest, ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { api, apiStatus, historyOf, metric, nodeStateOf } from '../support/node-state';
import { Stack, waitFor } from '../support/stack';
import { makeZip } from '../support/zips';

/** What GET /api/tasks lists of a refused result still retried. */
interface RefusedItem {
  taskId: string;
  outcome: 'refused';
  status: string | null;
  refusals: number;
  message: string;
  until: number;
}

const CHROMIUM = '/usr/bin/chromium';
const exists = (file: string) => fs.access(file).then(() => true, () => false);

/**
 * The pool forgets a task while it runs (devpool restarted with fresh state, as a
 * deployed pool restarted with its Redis flushed): it answers the result upload with
 * success=false ("unknown task") now and forever. On a node with one slot the refusal
 * must free the slot at once, the result is kept and retried slowly, shown as its own
 * outcome, and given up (its file deleted) after RESULT_REFUSED_RETRY.
 */
describe('a result the pool refuses for good', () => {
  let stack: Stack;
  let pool: PoolClient;
  let state: NodeStateConnection;
  let browser: Browser | null = null;

  beforeAll(async () => {
    stack = await Stack.create('refused', {
      MAX_CONCURRENT_TASKS: '1',
      RESULT_REFUSED_RETRY: '90',
      REGISTER_INTERVAL: '2',
      RECONCILE_INTERVAL: '5',
    });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    state = nodeStateOf(stack);
  });

  afterAll(async () => {
    await browser?.close();
    pool?.close();
    await state?.close();
    await stack?.destroy();
  });

  it('frees the slot at once (the node takes the next task), shows the refusal, then gives the result up and deletes it', async () => {
    const zip = await makeZip([{ name: 'run.sh', content: 'echo forgotten\nsleep 8\necho done\n' }]);
    expect((await uploadTask(pool, 'forgotten-1', zip)).success).toBe(true);
    await waitForStatus(pool, 'forgotten-1', ['RUNNING']);

    // The pool restarts with nothing: it no longer knows forgotten-1.
    const devpool = stack.services.find((s) => s.name === 'devpool')!;
    await stack.stop(devpool);
    stack.services.splice(stack.services.indexOf(devpool), 1);
    await stack.start('devpool');
    expect(await taskInfo(pool, 'forgotten-1')).toBeUndefined();

    // A new task on the restarted pool: the node's one slot is held by forgotten-1 until
    // its result is refused; then the node takes the new task.
    expect((await uploadTask(pool, 'next-1', await makeZip([{ name: 'run.sh', content: 'sleep 2\necho next\n' }]))).success).toBe(true);
    await waitForStatus(pool, 'next-1', ['RUNNING', 'COMPLETED'], 120_000);

    // The refusal is its own outcome in /api while the result is retried ...
    const refused = await waitFor('forgotten-1 listed as refused', async () => {
      const t = await api<{ refused: RefusedItem[] }>(stack, '/api/tasks');
      return t.refused.find((r) => r.taskId === 'forgotten-1');
    });
    expect(refused).toMatchObject({ outcome: 'refused', status: 'Success', message: 'unknown task forgotten-1' });
    expect(refused.refusals).toBeGreaterThanOrEqual(1);
    // ... without a slot: the ledger holds no share of it.
    expect(await state.ledger.holds('forgotten-1')).toBe(false);
    // ... and in /metrics.
    const gateway = stack.services.find((s) => s.name === 'gateway')!;
    expect(await metric(gateway, 'hivemind_result_uploads_refused_total')).toBeGreaterThanOrEqual(1);
    expect(await metric(gateway, 'hivemind_results_refused_waiting')).toBe(1);

    // ... and on the dashboard, above the finished tasks.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    await page.goto(`${stack.gatewayHttp}/login`);
    await page.fill('#token', (await fs.readFile(stack.env.DASHBOARD_TOKEN_FILE, 'utf8')).trim());
    await page.click('button[type=submit]');
    await page.waitForURL(`${stack.gatewayHttp}/`);
    await page.waitForSelector('#history-tasks tr[data-task-id="forgotten-1"] td.upload-refused:has-text("refused by the pool, retrying until")', { timeout: 30_000 });

    // The same task offered again while its result waits is refused: a new run would
    // find the waiting result; that result is what the pool gets.
    const worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure());
    try {
      expect(await unary(worker, worker.executeTask, executeRequest({ task_id: 'forgotten-1', task_zip: zip }))).toEqual({
        success: false,
        message: 'task forgotten-1 already ran on this node; its result is still waiting for the pool to take it',
      });
    } finally {
      worker.close();
    }

    // The executors' reconciler keeps the refused result's file although its slot is
    // free: a crashed executor's stale beat, pruned by a reconcile pass, marks one pass.
    const resultFile = path.join(stack.env.WORK_DIR, 'results', 'forgotten-1.zip');
    const stale: ExecutorBeat = { executorId: 'crashed-1', runtime: 'docker', docker: 'available', running: 0, concurrency: 1, seenAt: Date.now() - 3_600_000 };
    await state.executors.beat(stale);
    await waitFor('the crashed executor to be pruned', async () => !(await state.executors.all()).some((b) => b.executorId === 'crashed-1'), 60_000);
    const status = await apiStatus(stack);
    expect(status.executors.map((e) => e.executorId)).not.toContain('crashed-1');
    // (Given up only RESULT_REFUSED_RETRY after the refusal; checked only while still listed.)
    const kept = await exists(resultFile);
    if (await state.refused.has('forgotten-1')) expect(kept).toBe(true);

    // next-1 is delivered as usual.
    expect((await waitForStatus(pool, 'next-1', ['COMPLETED'], 60_000)).status).toBe('COMPLETED');

    // After RESULT_REFUSED_RETRY the result is given up: recorded as such, its file gone.
    // (Recorded in the history first, then deleted; the listing goes last.)
    const givenUp = await waitFor('forgotten-1 to be given up', async () => {
      const entry = (await historyOf(stack)).find((e) => e.taskId === 'forgotten-1');
      return entry && !(await state.refused.has('forgotten-1')) ? entry : null;
    }, 180_000);
    expect(givenUp).toMatchObject({ delivery: 'given_up', uploadedAt: null, refused: { message: 'unknown task forgotten-1' } });
    expect(await exists(resultFile)).toBe(false);
    await page.waitForSelector('#history-tasks tr[data-task-id="forgotten-1"] td.upload-given-up:has-text("given up")', { timeout: 30_000 });
    expect(await state.tasks.get('forgotten-1')).toBeNull();
    expect((await api<{ refused: RefusedItem[] }>(stack, '/api/tasks')).refused).toEqual([]);
    expect(await metric(gateway, 'hivemind_result_uploads_given_up_total')).toBe(1);
    expect(await metric(gateway, 'hivemind_results_refused_waiting')).toBe(0);
    // The pool still has never heard of it; next-1 was delivered once.
    expect(await taskInfo(pool, 'forgotten-1')).toBeUndefined();
    expect((await historyOf(stack)).filter((e) => e.taskId === 'next-1')).toEqual([expect.objectContaining({ status: 'Success' })]);
  });
});
