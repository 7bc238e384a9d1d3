import { promises as fs } from 'node:fs';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { NEVER_OFFERED, ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { metric, waitForReportedStatus } from '../support/node-state';
import { RunningService, Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip } from '../support/zips';

/** The gateway's dashboard API, as the volunteer steers it. */
async function post(stack: Stack, p: string): Promise<void> {
  const token = (await fs.readFile(stack.env.DASHBOARD_TOKEN_FILE, 'utf8')).trim();
  const res = await fetch(`${stack.gatewayHttp}${p}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
}

const service = (stack: Stack, name: RunningService['name']) => stack.services.filter((s) => s.name === name).pop()!;

/** Restarts the stack's devpool: a pool that knows no node, no task, and signs tokens with a new secret. */
async function restartDevpool(stack: Stack, env: Record<string, string> = {}): Promise<void> {
  const devpool = service(stack, 'devpool');
  await stack.stop(devpool);
  stack.services.splice(stack.services.indexOf(devpool), 1);
  await stack.start('devpool', env);
}

async function tasklog(pool: PoolClient, taskId: string): Promise<string> {
  return (await pool.call(pool.master, pool.master.getTasklog, (token) => ({ task_id: taskId, token }))).log;
}

/**
 * The pool link says what the node is at every moment. The deployed pool sets a node
 * with no running task Idle on every RegisterWorkerNode (devpool does the same): the
 * gateway follows each registration at once with its real status, and while the node
 * takes no work it does not register periodically at all (ReportStatus keeps it known).
 */
describe('a paused node and its registrations', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    // A registration every 2 s while the node takes work, a heartbeat every second, and
    // devpool's dispatcher looking every second.
    stack = await Stack.create('truth-paused', { REGISTER_INTERVAL: '2', HEARTBEAT_INTERVAL: '1', DEVPOOL_DISPATCH_INTERVAL: '1' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.destroy();
  });

  it('is never offered a task while paused, and registers only once it takes work again', async () => {
    const gateway = service(stack, 'gateway');
    // The node takes work at first.
    expect((await uploadTask(pool, 'before-pause', await makeZip([{ name: 'run.sh', content: 'echo before' }]))).success).toBe(true);
    expect((await waitForStatus(pool, 'before-pause', ['COMPLETED', 'FAILED'])).status).toBe('COMPLETED');

    await post(stack, '/api/pause');
    await waitForReportedStatus(stack, 'Paused');
    const registered = await metric(gateway, 'hivemind_pool_registrations_total');
    expect((await uploadTask(pool, 'while-paused', await makeZip([{ name: 'run.sh', content: 'echo after' }]))).success).toBe(true);
    // Five registration intervals and ten dispatcher ticks pass, the heartbeats going on.
    const since = Date.now();
    await new Promise((r) => setTimeout(r, 10_000));
    expect((await waitForReportedStatus(stack, 'Paused')).pool.lastHeartbeatOk).toBeGreaterThan(since);

    // No registration set the node Idle, and the pool never offered the task (none was pushed, so none was refused).
    expect(await metric(gateway, 'hivemind_pool_registrations_total')).toBe(registered);
    expect(await taskInfo(pool, 'while-paused')).toMatchObject({ status: 'PENDING', message: NEVER_OFFERED });
    expect(await metric(gateway, 'hivemind_tasks_refused_total', { reason: 'paused' })).toBe(0);

    await post(stack, '/api/resume');
    expect((await waitForStatus(pool, 'while-paused', ['COMPLETED', 'FAILED'])).status).toBe('COMPLETED');
    await waitFor('the node to register again', async () => (await metric(gateway, 'hivemind_pool_registrations_total')) > registered, 30_000);
  });
});

describe('a pool that forgets the node, and tokens that expire', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    // Registration only every 5 minutes: anything sooner comes from the gateway noticing.
    stack = await Stack.create('truth-link', { REGISTER_INTERVAL: '300' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.destroy();
  });

  it('registers again at once when the pool answers that it does not know the node, and counts the re-login', async () => {
    const gateway = service(stack, 'gateway');
    await waitForReportedStatus(stack, 'Idle');
    // Tokens last an hour here: no re-login yet.
    expect(await metric(gateway, 'hivemind_pool_relogins_total')).toBe(0);
    await restartDevpool(stack);
    // The new pool knows no node: a task is dispatched only once the gateway registered
    // again, on hearing "not registered", long before its next registration (300 s).
    expect((await uploadTask(pool, 'after-forget', await makeZip([{ name: 'run.sh', content: 'echo known again' }]))).success).toBe(true);
    expect((await waitForStatus(pool, 'after-forget', ['COMPLETED', 'FAILED'], 60_000)).status).toBe('COMPLETED');
    // The new pool refused the old token: the gateway logged in again, and counted it.
    expect(await metric(gateway, 'hivemind_pool_relogins_total')).toBeGreaterThanOrEqual(1);
  });

  it('keeps reporting output, usage and the result of a task that outlives several tokens', async () => {
    const gateway = service(stack, 'gateway');
    // Tokens of 4 s, a task of about 20 s.
    await restartDevpool(stack, { DEVPOOL_TOKEN_TTL: '4' });
    const relogins = await metric(gateway, 'hivemind_pool_relogins_total');
    // Small until 13 s in (three tokens later), then 300 MB: only a usage report sent late shows it.
    const code = [
      'import time',
      'start = time.time()',
      'i, blob = 0, None',
      'while time.time() - start < 20:',
      '    if blob is None and time.time() - start > 13:',
      '        blob = b"x" * (300 << 20)',
      '        print("allocated", flush=True)',
      '    print("tick", i, flush=True)',
      '    i += 1',
      '    time.sleep(0.5)',
      'open("result/out.txt", "w").write("done")',
      'print("last line", flush=True)',
    ].join('\n');
    expect((await uploadTask(pool, 'long-lived', await makeZip([{ name: 'run.py', content: code }]))).success).toBe(true);

    // Usage: the default 1 GiB limit, so 300 MB is near 30 %; before that the task used little.
    const used = await waitFor('the late memory use to reach the pool', async () => {
      const t = await taskInfo(pool, 'long-lived');
      return t && t.memory_usage > 15 ? t : null;
    }, 90_000);
    expect(['RUNNING', 'COMPLETED']).toContain(used.status);
    // Output printed after several tokens expired reached the pool.
    await waitFor('the late output to reach the pool', async () => (await tasklog(pool, 'long-lived')).includes('allocated'), 60_000);

    expect((await waitForStatus(pool, 'long-lived', ['COMPLETED', 'FAILED'], 90_000)).status).toBe('COMPLETED');
    const log = await tasklog(pool, 'long-lived');
    expect(log).toContain('tick 0');
    expect(log).toContain('last line');
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: 'long-lived', token }));
    expect(res.success).toBe(true);
    const files = await unzip(Buffer.from(res.result_zip));
    expect(files.get('result/out.txt')?.data.toString()).toBe('done');
    // Several tokens expired under the task; each refusal was followed by a counted login.
    expect((await metric(gateway, 'hivemind_pool_relogins_total')) - relogins).toBeGreaterThanOrEqual(3);
  });
});
