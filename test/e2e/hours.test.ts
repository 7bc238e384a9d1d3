import { WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { executeRequest } from '../support/pool';
import { makeZip } from '../support/zips';
import { waitForReportedStatus, withNodeState } from '../support/node-state';
import { Stack, waitFor } from '../support/stack';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/**
 * Working hours and CPU-only mode, through the real gateway: outside WORK_SCHEDULE the
 * node reports `Closed (working hours)` and refuses tasks saying when it opens; with
 * CPU_ONLY a task asking for a GPU is refused for that lasting reason first.
 */
describe('working hours and CPU-only mode', () => {
  let stack: Stack;
  let worker: WorkerNodeServiceClient;
  // One minute, three days from now: closed at any time the test runs.
  const day = DAYS[(new Date().getDay() + 3) % 7];
  const schedule = `${day} 03:00-03:01`;

  beforeAll(async () => {
    stack = await Stack.create('hours', { WORK_SCHEDULE: schedule, CPU_ONLY: 'true' });
    await stack.startAll();
    worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
  });

  afterAll(async () => {
    worker?.close();
    await stack?.stopAll();
  });

  it('reports Closed (working hours) and refuses a task, saying when the node opens', async () => {
    const zip = await makeZip([{ name: 'run.py', content: 'print(1)' }]);
    const res = await unary(worker, worker.executeTask, executeRequest({ task_id: 'closed-1', task_zip: zip }));
    expect(res.success).toBe(false);
    expect(res.message).toMatch(new RegExp(`^the node takes tasks only during its working hours \\(WORK_SCHEDULE "${schedule}"\\); it opens ${day} 03:00 \\(\\d{4}-`));
    // The node's status (/api/status) says so, and the pool has heard it since.
    await waitForReportedStatus(stack, 'Closed (working hours)');
    // The owner state the dashboard shows says so too.
    const state = await withNodeState(stack, (node) => waitFor('the owner state', () => node.owner.read(), 15_000));
    expect(state).toEqual({ busy: false, ownerCpuPercent: expect.any(Number), since: null, reason: expect.stringMatching(/off/), frozenTasks: [], scheduleOpen: false });
  });

  it('refuses a GPU task in CPU-only mode, before the passing reasons', async () => {
    const zip = await makeZip([{ name: 'run.py', content: 'print(1)' }]);
    for (const ask of [{ gpu_usage: 10 }, { gpu_memory_gb: 2 }]) {
      const res = await unary(worker, worker.executeTask, executeRequest({ task_id: 'gpu-1', task_zip: zip, ...ask }));
      expect(res).toEqual({ success: false, message: 'the task asks for a GPU; this node runs in CPU-only mode (CPU_ONLY) and gives tasks no GPU' });
    }
  });
});
