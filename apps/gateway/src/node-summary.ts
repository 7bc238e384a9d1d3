/** What the node is doing, in words a volunteer reads at a glance. */
export interface NodeSummary {
  /** e.g. "Running 1 of 2 tasks", "Paused: takes no new tasks". */
  text: string;
  /** For the badge's colour: working or ready, stopped on purpose, or something is wrong. */
  tone: 'ok' | 'warn' | 'bad';
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * The node's status as the dashboard and `hivemind-worker status` say it. `status` is
 * what the pool is told (`Idle` while another task fits, even with tasks running),
 * `held` the tasks the node holds, `maxTasks` how many it takes at once.
 */
export function summarizeStatus(status: string, held: number, maxTasks: number): NodeSummary {
  const running = held > 0 ? `running ${held} of ${plural(maxTasks, 'task', 'tasks')}` : '';
  const also = running ? `; ${running}` : '';
  switch (status) {
    case 'Idle':
      return { text: held > 0 ? `Running ${held} of ${plural(maxTasks, 'task', 'tasks')}, room for more` : 'Waiting for tasks', tone: 'ok' };
    case 'Paused':
      return { text: `Paused: takes no new tasks${also}`, tone: 'warn' };
    case 'Draining':
      return { text: `Shutting down: takes no new tasks${also}`, tone: 'warn' };
    case 'Busy (owner)':
      return { text: `You are using the machine: takes no new tasks${also}`, tone: 'warn' };
    case 'Closed (working hours)':
      return { text: `Outside its working hours: takes no new tasks${also}`, tone: 'warn' };
    case 'Low disk':
      return { text: `Low on disk: takes no new tasks${also}`, tone: 'bad' };
    case 'Unavailable':
      return { text: `Cannot run tasks: no executor is ready${also}`, tone: 'bad' };
    default:
      if (status.startsWith('Running')) return { text: `Running ${held} of ${plural(maxTasks, 'task', 'tasks')}: full`, tone: 'ok' };
      return { text: status, tone: 'warn' };
  }
}

/** A figure rounded to what a person reads: whole numbers from 10 up, one decimal below. */
export function roundForPeople(n: number): number {
  if (!Number.isFinite(n)) return 0;
  return Math.abs(n) >= 10 ? Math.round(n) : Math.round(n * 10) / 10;
}
