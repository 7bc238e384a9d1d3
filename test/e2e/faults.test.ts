import Docker from 'dockerode';
import { ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { CrashPoint } from '@hivemind/shared/util/crash-point';
import { historyOf, uploadsSucceeded, withNodeState } from '../support/node-state';
import { RunningService, Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip } from '../support/zips';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const KILLS = Number(process.env.FAULT_KILLS ?? 20);
const TASKS = 12;

/**
 * Fault injection: tasks flow while the executor is SIGKILLed at random moments of
 * their lives (unpacking, running, after exit, while packing or queueing the result)
 * and restarted. Every accepted task must end in exactly one result upload, no task
 * may run twice, and no container may be left behind.
 */
describe(`the executor SIGKILLed ${KILLS} times while tasks run`, () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('faults', {
      JOB_LOCK_DURATION: '2',
      RECONCILE_INTERVAL: '5',
      MAX_CONCURRENT_TASKS: '3',
      DEVPOOL_DISPATCH_INTERVAL: '0.3',
      TASK_DEFAULT_MEMORY_MB: '256',
    });
    await stack.start('devpool');
    await stack.start('executor');
    await stack.start('gateway');
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  it('loses nothing, doubles nothing and leaves no container', async () => {
    for (let i = 0; i < TASKS; i++) {
      const secs = (0.5 + (i % 4) * 0.7).toFixed(1);
      const zip = await makeZip([{ name: 'run.sh', content: `echo start >> starts.txt\nsleep ${secs}\necho ok > result/out.txt\n` }]);
      expect((await uploadTask(pool, `fault-${i}`, zip)).success).toBe(true);
    }
    let executor: RunningService = stack.services.find((s) => s.name === 'executor')!;
    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 2200));
      await stack.stop(executor, 'SIGKILL');
      executor = await stack.start('executor');
    }
    const ids = Array.from({ length: TASKS }, (_, i) => `fault-${i}`);
    await waitFor('every task to end', async () => {
      const infos = await Promise.all(ids.map((id) => taskInfo(pool, id)));
      return infos.every((t) => t && ['COMPLETED', 'FAILED'].includes(t.status));
    }, 240_000);

    // Uploads: the node's task history has one entry per result the pool took (written
    // just after the upload), and the gateway (never killed here) counts every upload
    // the pool accepted in its /metrics.
    const delivered = async () => {
      const history = await historyOf(stack);
      return new Map(ids.map((id) => [id, history.filter((e) => e.taskId === id).length]));
    };
    await waitFor('every delivery to be recorded', async () => [...(await delivered()).values()].every((n) => n > 0), 10_000).catch(() => undefined);
    const uploads = await delivered();
    const uploadedInAll = await uploadsSucceeded(stack.services.find((s) => s.name === 'gateway')!);
    const starts = new Map<string, number>();
    const statuses = new Map<string, string>();
    for (const id of ids) {
      const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: id, token }));
      const files = await unzip(Buffer.from(res.result_zip));
      starts.set(id, (files.get('starts.txt')?.data.toString() ?? '').split('\n').filter(Boolean).length);
      statuses.set(id, /Status: (\w+)/.exec(files.get('execution_log.txt')!.data.toString())![1]);
    }
    const ours = async () => (await docker.listContainers({ all: true, filters: { label: [`io.hivemind.task-id`] } })).filter((c) => ids.includes(c.Labels['io.hivemind.task-id']));
    // The reconciler removes what a killed executor left; give it a couple of rounds.
    await waitFor('leftover containers to be removed', async () => (await ours()).length === 0, 30_000).catch(() => undefined);
    const orphans = (await ours()).length;
    const pool_ = await Promise.all(ids.map((id) => taskInfo(pool, id)));
    const counts = {
      accepted: TASKS,
      completedAtPool: pool_.filter((t) => t?.status === 'COMPLETED').length,
      uploads: [...uploads.values()].reduce((a, b) => a + b, 0),
      uploadedInAll,
      duplicates: [...uploads.values()].filter((n) => n > 1).length,
      ranTwice: [...starts.values()].filter((n) => n > 1).length,
      succeeded: [...statuses.values()].filter((s) => s === 'Success').length,
      orphans,
    };
    console.log(`faults: ${KILLS} executor kills; ${JSON.stringify(counts)}; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(counts).toEqual({ accepted: TASKS, completedAtPool: TASKS, uploads: TASKS, uploadedInAll: TASKS, duplicates: 0, ranTwice: 0, succeeded: TASKS, orphans: 0 });
  });
});

/** How many results the pool received for a task (devpool says so in the task's message when more than one). */
function resultsReceived(message: string): number {
  return Number(/the result arrived (\d+) times/.exec(message)?.[1] ?? 1);
}

const exited = (svc: RunningService) => svc.proc.exitCode !== null || svc.proc.signalCode !== null;

/**
 * The gateway killed (SIGKILL) at each point of a result's upload, then started again.
 * The protocol has no idempotent upload: a crash after the pool acknowledged a result
 * and before the node recorded that cannot be told from one before the upload, so the
 * restarted gateway uploads once more. That window is one Redis write wide; every other
 * point delivers exactly once. The test counts what the pool received per kill point,
 * and checks the node's own record: one history entry and a free slot each time.
 */
describe('the gateway killed at each point of a result upload', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('upload-window', { JOB_LOCK_DURATION: '2', DEVPOOL_DISPATCH_INTERVAL: '0.3', HEARTBEAT_INTERVAL: '1' });
    await stack.start('devpool');
    await stack.start('executor');
    pool = ownerClient(stack.devpoolAddress);
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  it('uploads once, except for the one window the protocol leaves, where it uploads twice', async () => {
    const points: CrashPoint[] = ['result:before-upload', 'result:after-ack', 'result:after-record'];
    const seen: Record<string, { poolReceived: number; historyEntries: number; slotHeld: boolean; gatewayKilled: boolean }> = {};
    for (const [i, point] of points.entries()) {
      const taskId = `window-${i}`;
      const doomed = await stack.start('gateway', { FAULT_CRASH_AT: point });
      const zip = await makeZip([{ name: 'main.py', content: `print('result ${i}')\n` }]);
      expect((await uploadTask(pool, taskId, zip)).success).toBe(true);
      await waitFor(`the gateway to die at ${point}`, async () => exited(doomed), 90_000);
      const gatewayKilled = doomed.proc.signalCode === 'SIGKILL';
      const fresh = await stack.start('gateway');
      const info = await waitForStatus(pool, taskId, ['COMPLETED', 'FAILED'], 120_000);
      expect(`${point}: ${info.status} (${info.message})`).toBe(`${point}: COMPLETED (${info.message})`);
      // The restarted gateway finishes the task: its history entry written and its slot freed.
      await waitFor(`${taskId} to be finished on the node`, async () => {
        const inHistory = (await historyOf(stack)).some((e) => e.taskId === taskId);
        const held = await withNodeState(stack, (s) => s.ledger.holds(taskId));
        return inHistory && !held;
      }, 60_000);
      const message = (await taskInfo(pool, taskId))!.message;
      seen[point] = {
        poolReceived: resultsReceived(message),
        historyEntries: (await historyOf(stack)).filter((e) => e.taskId === taskId).length,
        slotHeld: await withNodeState(stack, (s) => s.ledger.holds(taskId)),
        gatewayKilled,
      };
      await stack.stop(fresh);
    }
    console.log(`upload window: ${JSON.stringify(seen)}`);
    expect(seen).toEqual({
      'result:before-upload': { poolReceived: 1, historyEntries: 1, slotHeld: false, gatewayKilled: true },
      'result:after-ack': { poolReceived: 2, historyEntries: 1, slotHeld: false, gatewayKilled: true },
      'result:after-record': { poolReceived: 1, historyEntries: 1, slotHeld: false, gatewayKilled: true },
    });
  });
});
