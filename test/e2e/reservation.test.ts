import * as os from 'node:os';
import IORedis from 'ioredis';
import { WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { executeRequest } from '../support/pool';
import { makeZip } from '../support/zips';
import { Stack, waitFor } from '../support/stack';

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
  let redis: IORedis;
  const registered = () => stack.services.find((s) => s.name === 'devpool')!.output();

  beforeAll(async () => {
    stack = await Stack.create('reserve', { OWNER_RESERVED_CORES: '1', OWNER_RESERVED_MEMORY_GB: String(machineGb - 1), CPU_SCORE: String(machineCores * 100), REGISTER_INTERVAL: '300' });
    await stack.startAll();
    worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
    redis = new IORedis(stack.env.REDIS_URL);
  });

  afterAll(async () => {
    worker?.close();
    redis?.disconnect();
    await stack?.stopAll();
  });

  it('registers the machine minus the reservation, admits only that, and re-registers at once when it changes', async () => {
    const cores = machineCores - 1;
    await waitFor('the first registration', async () => registered().includes(`"cpuScore":${cores * 100},"cores":${cores},"memoryGb":1,`), 20_000);
    const zip = await makeZip([{ name: 'run.py', content: 'print(1)' }]);
    const refused = await unary(worker, worker.executeTask, executeRequest({ task_id: 'big-1', task_zip: zip, memory_gb: 2 }));
    expect(refused).toEqual({ success: false, message: 'the task asks 2 GB of memory; this node registered 1 GB' });

    // The dashboard's settings change, as it stores it; REGISTER_INTERVAL is 300 s, so only the change re-registers.
    await redis.hset(`${stack.env.REDIS_PREFIX}:settings`, { ownerReservedMemoryGb: String(machineGb - 3) });
    await waitFor('the re-registration', async () => registered().includes(`"cores":${cores},"memoryGb":3,`), 20_000);
    const accepted = await unary(worker, worker.executeTask, executeRequest({ task_id: 'big-2', task_zip: zip, memory_gb: 2 }));
    expect(accepted.success).toBe(true);
  });
});
