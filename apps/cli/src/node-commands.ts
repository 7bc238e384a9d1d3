import type { LoggedProblem } from '@hivemind/shared/logging/logger';
import type { HostSample } from '@hivemind/shared/state/monitor-samples';
import type { RefusedResult } from '@hivemind/shared/state/refused-results';
import type { TaskHistoryEntry } from '@hivemind/shared/state/task-history';
import { GatewayClient } from './gateway-client';

/**
 * status, pause, resume, tasks and logs: the gateway's API in words a person reads
 * (or its JSON as it came, with --json).
 */

/** What GET /api/status answers, as far as these commands read it. */
interface StatusReply {
  node: { nodeId: string; advertise: string; location: string };
  pool: { address: string; loggedIn: boolean; connected: boolean; lastHeartbeatOk: number | null; lastError: string | null };
  status: string;
  heldTasks: number;
  paused: boolean;
  draining: boolean;
  settings: { maxConcurrentTasks: number; ownerReservedCores: number; ownerReservedMemoryGb: number };
  executors: unknown[];
  cpt: { balance: number | null; estimatedTotal: number; estimatedTasks: number };
  host: HostSample | null;
  problems: LoggedProblem[];
}

interface RunningTask {
  taskId: string;
  startedAt: number;
  cpuPercent: number;
  memoryPercent: number;
  memoryBytes: number;
}

interface TasksReply {
  running: RunningTask[];
  refused: (RefusedResult & { status: string | null; reason: string | null })[];
  history: Omit<TaskHistoryEntry, 'logsTail'>[];
}

const round = (n: number, digits = 0) => Number(n.toFixed(digits)).toString();
const gb = (bytes: number) => `${round(bytes / 1024 ** 3, 1)} GB`;
const mb = (bytes: number) => `${round(bytes / 1024 ** 2)} MB`;

function ago(at: number | null, now: number): string {
  if (at === null) return 'never';
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${round(s / 3600, 1)} h ago`;
}

function duration(seconds: number): string {
  if (seconds < 120) return `${round(seconds, seconds < 10 ? 1 : 0)} s`;
  if (seconds < 7200) return `${round(seconds / 60, 1)} min`;
  return `${round(seconds / 3600, 1)} h`;
}

const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatStatus(s: StatusReply, now = Date.now()): string {
  const pool = s.pool.connected ? 'connected' : s.pool.loggedIn ? 'logged in, no recent heartbeat' : 'not logged in';
  const rows: [string, string][] = [
    ['Node', `${s.node.nodeId} (the pool dials ${s.node.advertise}${s.node.location ? `, ${s.node.location}` : ''})`],
    ['Pool', `${s.pool.address}: ${pool}; last heartbeat ${ago(s.pool.lastHeartbeatOk, now)}${s.pool.lastError ? `; last error: ${s.pool.lastError}` : ''}`],
    ['Status', `${s.status}${s.paused ? ' (paused: takes no new tasks; resume with: hivemind-worker resume)' : ''}${s.draining ? ' (draining)' : ''}`],
    ['Tasks', `${s.heldTasks} held of ${s.settings.maxConcurrentTasks}`],
    ['Executors', String(s.executors.length)],
    ['CPT', `balance ${s.cpt.balance === null ? 'unknown' : round(s.cpt.balance, 2)}; this node's estimate ${round(s.cpt.estimatedTotal, 2)} over ${s.cpt.estimatedTasks} task(s)`],
  ];
  if (s.host) {
    rows.push([
      'Host',
      `CPU ${round(s.host.cpuPercent)} %, memory ${round(s.host.memoryPercent)} % (${gb(s.host.memoryUsedBytes)} of ${gb(s.host.memoryTotalBytes)}), disk ${round(s.host.diskPercent)} % (${gb(s.host.diskFreeBytes)} free)`,
    ]);
  }
  rows.push(['Problems', s.problems.length ? `${s.problems.length}, newest (${ago(s.problems[0].time, now)}): ${s.problems[0].msg}${s.problems[0].detail ? `: ${s.problems[0].detail}` : ''}` : 'none']);
  return rows.map(([k, v]) => `${k.padEnd(10)}${v}`).join('\n');
}

export function formatTasks(t: TasksReply, now = Date.now()): string {
  const parts: string[] = [];
  parts.push(
    t.running.length
      ? `Running (${t.running.length}):\n${table(
          ['TASK', 'STARTED', 'CPU', 'MEMORY'],
          t.running.map((r) => [r.taskId, ago(r.startedAt, now), `${round(r.cpuPercent)} %`, `${mb(r.memoryBytes)} (${round(r.memoryPercent)} %)`]),
        )}`
      : 'Running: none',
  );
  if (t.refused.length) {
    parts.push(
      `Results the pool refused, still retried (${t.refused.length}):\n${table(
        ['TASK', 'REFUSALS', 'RETRIED UNTIL', 'POOL SAID'],
        t.refused.map((r) => [r.taskId, String(r.refusals), time(r.until), r.message]),
      )}`,
    );
  }
  parts.push(
    t.history.length
      ? `Finished (${t.history.length}, newest first):\n${table(
          ['TASK', 'STATUS', 'FINISHED', 'TOOK', 'RESULT', 'REASON'],
          t.history.map((h) => [
            h.taskId,
            h.delivery === 'given_up' ? `${h.status} (result given up)` : h.status,
            ago(h.finishedAt, now),
            duration(h.durationSeconds),
            mb(h.resultBytes),
            h.reason,
          ]),
        )}`
      : 'Finished: none yet',
  );
  return parts.join('\n\n');
}

/** Runs one of the commands; returns what it prints. */
export async function runNodeCommand(client: GatewayClient, command: 'status' | 'pause' | 'resume' | 'tasks' | 'logs', opts: { json: boolean; taskId?: string; limit?: number }): Promise<string> {
  const json = (v: unknown) => JSON.stringify(v, null, 2);
  switch (command) {
    case 'status': {
      const s = (await client.get('/api/status')) as StatusReply;
      return opts.json ? json(s) : formatStatus(s);
    }
    case 'pause': {
      const r = await client.post('/api/pause');
      return opts.json ? json(r) : 'Paused: the node takes no new tasks (the pool sees "Paused"); tasks it holds run to the end. Undo with: hivemind-worker resume';
    }
    case 'resume': {
      const r = await client.post('/api/resume');
      return opts.json ? json(r) : 'Resumed: the node takes tasks again.';
    }
    case 'tasks': {
      const t = (await client.get(`/api/tasks${opts.limit === undefined ? '' : `?limit=${opts.limit}`}`)) as TasksReply;
      return opts.json ? json(t) : formatTasks(t);
    }
    case 'logs': {
      const text = await client.getText(`/api/tasks/${encodeURIComponent(opts.taskId ?? '')}/logs`);
      return opts.json ? json({ taskId: opts.taskId, logs: text }) : text.replace(/\n$/, '');
    }
  }
}
