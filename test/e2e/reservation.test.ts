import * as os from 'node:os';
import { NodeStateConnection } from '@hivemind/shared/state/node-state';
import { WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { executeRequest, NEVER_OFFERED, ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { makeZip } from '../support/zips';
import { nodeStateOf } from '../support/node-state';
import { Stack } from '../support/stack';

const machineGb = Math.floor(os.totalmem() / 1024 ** 3);
const machineCores = os.cpus().length;
/**
 * The owner's reservation: cores and memory kept for the owner are subtracted from
 * what the node registers and from what admission gives tasks, and a live change of
 * the settings reaches the pool at once (a re-registration, not the next 30 s one).
 */
describe('owner reservation', () => {
  let stack: Stack;
  let worker: WorkerNodeServiceClient;
  let state: NodeStateConnection;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('reserve', { OWNER_RESERVED_CORES: '1', OWNER_RESERVED_MEMORY_GB: String(machineGb - 1), CPU_SCORE: String(machineCores * 100), REGISTER_INTERVAL: '300' });
    await stack.startAll();
    worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
    state = nodeStateOf(stack);
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    worker?.close();
    pool?.close();
    await state?.close();
    await stack?.stopAll();
  });

  it('registers the machine minus the reservation, admits only that, and re-registers at once when it changes', async () => {
    const cores = machineCores - 1;
    const zip = await makeZip([{ name: 'run.py', content: 'print(1)' }]);
    // What the pool was told shows in what it offers the node: it offers a task only if it
    // fits the registered capacity (tasks it never offered stay PENDING with no message).
    // One that needs the whole registration runs; one CPU point or one GB more is never offered.
    for (const [id, ask] of [['over-cpu', { cpuScore: cores * 100 + 1 }], ['over-mem', { memoryGb: 2 }], ['fits', { cpuScore: cores * 100, memoryGb: 1 }]] as const) {
      expect((await uploadTask(pool, id, zip, ask)).success).toBe(true);
    }
    expect((await waitForStatus(pool, 'fits', ['COMPLETED', 'FAILED'], 60_000)).status).toBe('COMPLETED');
    expect(await taskInfo(pool, 'over-cpu')).toMatchObject({ status: 'PENDING', message: NEVER_OFFERED });
    expect(await taskInfo(pool, 'over-mem')).toMatchObject({ status: 'PENDING', message: NEVER_OFFERED });
    const refused = await unary(worker, worker.executeTask, executeRequest({ task_id: 'big-1', task_zip: zip, memory_gb: 2 }));
    expect(refused).toEqual({ success: false, message: 'the task asks 2 GB of memory; this node registered 1 GB' });

    // The dashboard's settings change, as it stores it; REGISTER_INTERVAL is 300 s, so only the change re-registers.
    await state.settings.write({ ownerReservedMemoryGb: String(machineGb - 3) });
    // The pool now has 3 GB for the node: it offers the 2 GB task, which runs (well before the next periodic registration).
    expect((await waitForStatus(pool, 'over-mem', ['COMPLETED', 'FAILED'], 20_000)).status).toBe('COMPLETED');
    expect(await taskInfo(pool, 'over-cpu')).toMatchObject({ status: 'PENDING', message: NEVER_OFFERED });
    const accepted = await unary(worker, worker.executeTask, executeRequest({ task_id: 'big-2', task_zip: zip, memory_gb: 2 }));
    expect(accepted.success).toBe(true);
  });
});
