import { promises as fs } from 'node:fs';
import { Queue } from 'bullmq';
import { bullOptions, QueueName, QueueSite } from '@hivemind/shared/queue/queues';
import { connectNodeState, NodeStateConnection } from '@hivemind/shared/state/node-state';
import { RunningService, Stack, waitFor } from './stack';

/**
 * What a volunteer (or the pool) sees of a test stack's node, for tests to wait on
 * instead of log lines: the gateway's /api and /metrics, and the node's state in Redis.
 */

/** The node as GET /api/status shows it (the fields tests read). */
export interface ApiStatus {
  status: string;
  paused: boolean;
  draining: boolean;
  pool: { loggedIn: boolean; connected: boolean; lastHeartbeatOk: number | null; lastError: string | null; lastErrorAt: number | null };
  capacity: { cpuScore: number; cpuCores: number; memoryGb: number } & Record<string, unknown>;
  executors: { executorId: string; runtime: string; problem?: string | null }[];
  cpt: { balance: number | null };
}

/** The gateway service of a stack: `svc`, or its newest gateway. */
function gatewayOf(stack: Stack, svc?: RunningService): RunningService {
  const gw = svc ?? stack.services.filter((s) => s.name === 'gateway').pop();
  if (!gw) throw new Error('the stack runs no gateway');
  return gw;
}

/** GET a path of a stack's gateway /api, with the dashboard token. */
export async function api<T>(stack: Stack, p: string, svc?: RunningService): Promise<T> {
  const token = (await fs.readFile(stack.env.DASHBOARD_TOKEN_FILE, 'utf8')).trim();
  const res = await fetch(`http://127.0.0.1:${gatewayOf(stack, svc).httpPort}${p}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${p}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

export const apiStatus = (stack: Stack, svc?: RunningService) => api<ApiStatus>(stack, '/api/status', svc);

/**
 * Waits until the node's status (GET /api/status, what its heartbeats carry) is
 * `status` and the pool has since taken a heartbeat from this gateway, so the pool
 * knows it too.
 */
export async function waitForReportedStatus(stack: Stack, status: string, timeoutMs = 60_000, svc?: RunningService): Promise<ApiStatus> {
  let seenAt = 0;
  return waitFor(`the node to report ${status} to the pool`, async () => {
    const s = await apiStatus(stack, svc);
    if (s.status !== status) {
      seenAt = 0;
      return null;
    }
    seenAt ||= Date.now();
    // Computed after the status was seen: a heartbeat that ended over a second later (HEARTBEAT_INTERVAL is 1 s in tests).
    return s.pool.lastHeartbeatOk !== null && s.pool.lastHeartbeatOk > seenAt + 1000 ? s : null;
  }, timeoutMs);
}

/** A counter or gauge of a service's /metrics (summed over its labels matching `labels`). */
export async function metric(svc: RunningService, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${svc.httpPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? ([-+\d.eE]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** A task history entry (the fields tests read). */
export interface HistoryEntry {
  taskId: string;
  status: string;
  reason: string;
  uploadedAt: number | null;
  delivery?: 'uploaded' | 'given_up';
  refused?: { at: number; until: number; refusals: number; message: string };
}

/**
 * The node's state in a stack's Redis, through the state repositories (what the services
 * themselves read and write); close() it when done.
 */
export function nodeStateOf(stack: Stack, name = 'test'): NodeStateConnection {
  return connectNodeState(stack.env.REDIS_URL, stack.env.REDIS_PREFIX, name, { maxRetriesPerRequest: 2 });
}

/** Where a stack's queues live. */
export function queueSite(stack: Stack): QueueSite {
  return { REDIS_URL: stack.env.REDIS_URL, REDIS_PREFIX: stack.env.REDIS_PREFIX };
}

/** One of a stack's BullMQ queues, on a connection of its own (close() it when done). */
export function queueOf(stack: Stack, name: QueueName): Queue {
  return new Queue(name, bullOptions(queueSite(stack), `test-${name}`));
}

/** Runs `fn` with the stack's node state open, and closes it after. */
export async function withNodeState<T>(stack: Stack, fn: (state: NodeStateConnection) => Promise<T>): Promise<T> {
  const state = nodeStateOf(stack);
  try {
    return await fn(state);
  } finally {
    await state.close();
  }
}

/** The node's task history (Redis, what /api/tasks lists): one entry per result the pool took. */
export async function historyOf(stack: Stack): Promise<HistoryEntry[]> {
  return withNodeState(stack, (state) => state.history.list(Number.MAX_SAFE_INTEGER));
}

/** How many times the node delivered a task's result to the pool (its history entries, less the results given up). */
export async function deliveries(stack: Stack, taskId: string): Promise<number> {
  return (await historyOf(stack)).filter((e) => e.taskId === taskId && e.delivery !== 'given_up').length;
}

/** Results a gateway process delivered (upload attempts the pool answered with success), from its /metrics. */
export async function uploadsSucceeded(gateway: RunningService): Promise<number> {
  return (await metric(gateway, 'hivemind_result_upload_attempts_total')) - (await metric(gateway, 'hivemind_result_upload_failures_total'));
}
