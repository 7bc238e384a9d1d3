import { Metadata, status } from '@grpc/grpc-js';
import IORedis from 'ioredis';
import { unary } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { NodeStateConnection } from '@hivemind/shared/state/node-state';
import { RedisKeys } from '@hivemind/shared/state/redis-keys';
import { ownerClient, taskInfo, uploadTask } from '../support/pool';
import { makeZip } from '../support/zips';
import { deliveries, metric, nodeStateOf, uploadsSucceeded } from '../support/node-state';
import { Stack, waitFor } from '../support/stack';

/** The worker's link to the pool: auth as the deployed pool does it, outages, the monitor's figures. */
describe('the link to the Node Pool', () => {
  let stack: Stack;
  let pool: PoolClient;
  // Raw: only for the orphaned output entry (see its test).
  let redis: IORedis;
  let state: NodeStateConnection;

  beforeAll(async () => {
    // A short call deadline so a frozen pool shows up as failed calls quickly.
    stack = await Stack.create('link', { POOL_CALL_TIMEOUT: '2', REGISTER_INTERVAL: '2' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    redis = new IORedis(stack.env.REDIS_URL);
    state = nodeStateOf(stack);
  });

  afterAll(async () => {
    pool?.close();
    redis?.disconnect();
    await state?.close();
    await stack?.stopAll();
  });

  it('rejects a call without a valid token as the deployed pool does: INTERNAL, "Exception deserializing request!"', async () => {
    const bad = new Metadata();
    bad.set('authorization', 'Bearer not.a.jwt');
    for (const md of [new Metadata(), bad]) {
      await expect(unary(pool.users, pool.users.getBalance, { username: 'alice', token: '' }, md)).rejects.toMatchObject({
        code: status.INTERNAL,
        details: 'Exception deserializing request!',
      });
    }
    const refused = await unary(pool.users, pool.users.login, { username: 'alice', password: 'wrong' });
    expect(refused).toEqual({ success: false, message: 'invalid username or password', token: '' });
  });

  it('logs in again and retries once when the pool no longer takes its token', async () => {
    await pool.login();
    const before = await pool.call(pool.users, pool.users.getBalance, (token) => ({ username: 'alice', token }));
    expect(before.success).toBe(true);
    // A restarted pool signs with a new secret: the old token is now refused.
    const devpool = stack.services.find((s) => s.name === 'devpool')!;
    await stack.stop(devpool);
    stack.services.splice(stack.services.indexOf(devpool), 1);
    await stack.start('devpool');
    const after = await pool.call(pool.users, pool.users.getBalance, (token) => ({ username: 'alice', token }));
    expect(after).toEqual({ success: true, message: '', balance: 100 });
    // The gateway re-registered with the new pool on its own and takes work again.
    const zip = await makeZip([{ name: 'run.sh', content: 'echo back' }]);
    const up = await uploadTask(pool, 'after-restart', zip);
    expect(up.success).toBe(true);
    await waitFor('the task to complete on the restarted pool', async () => {
      const t = await taskInfo(pool, 'after-restart');
      return t?.status === 'COMPLETED';
    }, 60_000);
  });

  it('relays output another gateway (or this one under an old hostname) left undelivered', async () => {
    const key = new RedisKeys(stack.env.REDIS_PREFIX).output;
    // Added and read by a consumer that then vanished, in one transaction so the running
    // gateway cannot read it first; then aged to count as orphaned. Raw: OutputStream.append
    // and a group reader cannot add and read in one transaction (the running gateway's
    // blocked read would take the entry first), and no repository ages an entry.
    const [[, id]] = (await redis
      .multi()
      .xadd(key, '*', 'task', 'after-restart', 'text', 'left behind by gateway-old-host')
      .xreadgroup('GROUP', 'gateway', 'gateway-old-host', 'STREAMS', key, '>')
      .exec()) as [[null, string]];
    expect(await redis.xpending(key, 'gateway', '-', '+', 10, 'gateway-old-host')).toEqual([[id, 'gateway-old-host', expect.any(Number), 1]]);
    await redis.xclaim(key, 'gateway', 'gateway-old-host', 0, id, 'IDLE', 120_000);
    await waitFor('the orphaned output to reach the pool', async () => {
      const log = await pool.call(pool.master, pool.master.getTasklog, (token) => ({ task_id: 'after-restart', token }));
      return log.log.includes('left behind by gateway-old-host');
    }, 40_000);
    await waitFor('the entry to leave the stream', async () => (await state.output.length()) === 0 || !(await redis.xrange(key, id, id)).length, 10_000);
  });

  it('keeps a result until a frozen pool answers again, then uploads it once', async () => {
    const zip = await makeZip([{ name: 'main.py', content: 'import time\ntime.sleep(5)\nprint("finished")' }]);
    const up = await uploadTask(pool, 'outage-1', zip);
    expect(up.success).toBe(true);
    const status = async () => await taskInfo(pool, 'outage-1');
    await waitFor('outage-1 to run', async () => (await status())?.status === 'RUNNING');
    const devpool = stack.services.find((s) => s.name === 'devpool')!;
    const gateway = stack.services.find((s) => s.name === 'gateway')!;
    const failuresBefore = await metric(gateway, 'hivemind_result_upload_failures_total');
    const deliveredBefore = await uploadsSucceeded(gateway);
    devpool.proc.kill('SIGSTOP');
    try {
      // The gateway's /metrics count the upload the frozen pool did not answer (it will retry).
      await waitFor('the gateway to fail an upload', async () => (await metric(gateway, 'hivemind_result_upload_failures_total')) > failuresBefore, 30_000);
    } finally {
      devpool.proc.kill('SIGCONT');
    }
    const t = await waitFor('outage-1 to complete', async () => {
      const x = await status();
      return x?.status === 'COMPLETED' ? x : null;
    }, 60_000);
    expect(t.status).toBe('COMPLETED');
    // Delivered once: one entry in the node's task history, one more successful upload.
    await waitFor('the delivery to be recorded', async () => (await deliveries(stack, 'outage-1')) > 0, 10_000);
    expect(await deliveries(stack, 'outage-1')).toBe(1);
    expect((await uploadsSucceeded(gateway)) - deliveredBefore).toBe(1);
    // Its last line was printed while the pool was frozen: it waited, and arrived.
    await waitFor('the output printed during the outage', async () => {
      const log = await pool.call(pool.master, pool.master.getTasklog, (token) => ({ task_id: 'outage-1', token }));
      return log.log.includes('finished');
    }, 20_000);
  });

  it('publishes host samples the gateway reports', async () => {
    const s = await waitFor('a monitor sample', () => state.monitor.latest());
    expect(s.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(s.memoryTotalBytes).toBeGreaterThan(0);
    expect(s.memoryPercent).toBeGreaterThan(0);
    expect(s.diskTotalBytes).toBeGreaterThan(0);
    expect(Date.now() - s.at).toBeLessThan(10_000);
    await waitFor('history to grow', async () => (await state.monitor.history()).length >= 2, 10_000);
  });
});
