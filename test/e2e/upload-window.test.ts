import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { CrashPoint } from '@hivemind/shared/util/crash-point';
import { ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { historyOf, withNodeState } from '../support/node-state';
import { RunningService, Stack, waitFor } from '../support/stack';
import { makeZip } from '../support/zips';

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
