import { ExecuteTaskRequest, TaskInfo } from '@hivemind/shared/proto/generated/nodepool';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { waitFor } from './stack';

/** A task owner's client of a test stack's devpool. */
export function ownerClient(address: string, username = 'alice', password = `${username}-password`): PoolClient {
  return new PoolClient(address, { username, password }, { maxMessageBytes: 64 << 20, callTimeoutMs: 20_000 });
}

export { uploadTask } from '../../apps/devpool/src/submit-client';

/**
 * A devpool task's message until the pool first offers it to a node: a task still
 * PENDING with it was never offered (it fits no node the pool knows as Idle).
 */
export const NEVER_OFFERED = 'waiting for a node';

export async function taskInfo(pool: PoolClient, taskId: string): Promise<TaskInfo | undefined> {
  return (await pool.call(pool.master, pool.master.getAllUserTasks, (token) => ({ token }))).tasks.find((t) => t.task_id === taskId);
}

export function waitForStatus(pool: PoolClient, taskId: string, statuses: string[], timeoutMs = 90_000): Promise<TaskInfo> {
  return waitFor(`${taskId} to reach ${statuses.join('/')}`, async () => {
    const t = await taskInfo(pool, taskId);
    return t && statuses.includes(t.status) ? t : null;
  }, timeoutMs);
}

/** An ExecuteTask request with harmless defaults, for calling a gateway directly. */
export function executeRequest(p: Partial<ExecuteTaskRequest> = {}): ExecuteTaskRequest {
  return { task_id: 'ok-1', task_zip: Buffer.alloc(0), cpu_usage: 0, gpu_usage: 0, memory_gb: 0, gpu_memory_gb: 0, ...p };
}
