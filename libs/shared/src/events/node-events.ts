import { z } from 'zod';
import { resultJobSchema } from '../queue/queues';
import { hostSampleSchema } from '../state/monitor-samples';
import { ownerStateSchema } from '../state/owner-state';
import { TASK_ID_PATTERN } from '../task-format/task-id';

/**
 * The events the monitor and the executors emit (a Nest ClientProxy over the Redis
 * transport) and the gateway streams to the dashboard (GET /api/events). The name is
 * the Redis channel; do not rename one without changing every emitter and the gateway
 * together (an event on a channel nobody listens to is lost).
 */
export const NodeEvent = {
  /** monitor: each host sample it takes. */
  HostSample: 'hivemind.host.sample',
  /** monitor: its readiness changed (a check went up or down). */
  HealthChanged: 'hivemind.health.changed',
  /** monitor: the owner state changed (busy, frozen tasks, working hours). */
  OwnerChanged: 'hivemind.owner.changed',
  /** executor: a task's container started. */
  TaskStarted: 'hivemind.task.started',
  /** executor: a task ended Success or Failed and its result is queued for upload. */
  TaskFinished: 'hivemind.task.finished',
  /** executor: a task ended Stopped (stop request, shutdown) and its result is queued. */
  TaskStopped: 'hivemind.task.stopped',
} as const;
export type NodeEvent = (typeof NodeEvent)[keyof typeof NodeEvent];

/**
 * Every event names the node it belongs to: its REDIS_PREFIX. Redis channels are shared
 * by everything on one Redis server (whatever the prefix or database), so a gateway
 * takes only the events of its own node.
 */
const envelope = { node: z.string().min(1) };

export const hostSampleEventSchema = z.object({ ...envelope, sample: hostSampleSchema });

const checkStateSchema = z.object({ name: z.string().min(1), ok: z.boolean(), reason: z.string().optional() });
export const healthChangedEventSchema = z.object({
  ...envelope,
  service: z.string().min(1),
  at: z.number().int(),
  ready: z.boolean(),
  checks: z.array(checkStateSchema),
});

export const ownerChangedEventSchema = z.object({ ...envelope, at: z.number().int(), state: ownerStateSchema });

export const taskStartedEventSchema = z.object({
  ...envelope,
  taskId: z.string().regex(TASK_ID_PATTERN),
  executorId: z.string().min(1),
  startedAt: z.number().int(),
});

const ended = resultJobSchema.pick({ taskId: true, code: true, reason: true, exitCode: true, startedAt: true, finishedAt: true });
export const taskFinishedEventSchema = z.object({ ...envelope, ...ended.shape, status: z.enum(['Success', 'Failed']) });
export const taskStoppedEventSchema = z.object({ ...envelope, ...ended.shape, status: z.literal('Stopped') });

/** The payload schema of each event. */
export const nodeEventSchemas = {
  [NodeEvent.HostSample]: hostSampleEventSchema,
  [NodeEvent.HealthChanged]: healthChangedEventSchema,
  [NodeEvent.OwnerChanged]: ownerChangedEventSchema,
  [NodeEvent.TaskStarted]: taskStartedEventSchema,
  [NodeEvent.TaskFinished]: taskFinishedEventSchema,
  [NodeEvent.TaskStopped]: taskStoppedEventSchema,
} as const;

export type NodeEventPayload<E extends NodeEvent> = z.infer<(typeof nodeEventSchemas)[E]>;
/** A payload as an emitter hands it over: the node is filled in by the emitter. */
export type NodeEventData<E extends NodeEvent> = Omit<NodeEventPayload<E>, 'node'>;

/** One validated event, as the gateway streams it. */
export type NodeEventMessage = { [E in NodeEvent]: { event: E; data: NodeEventPayload<E> } }[NodeEvent];

/** Parses an event's payload: the data, or what was wrong with it (each field named). */
export function parseNodeEvent<E extends NodeEvent>(event: E, data: unknown): { ok: true; data: NodeEventPayload<E> } | { ok: false; problem: string } {
  const r = nodeEventSchemas[event].safeParse(data);
  if (r.success) return { ok: true, data: r.data as NodeEventPayload<E> };
  return { ok: false, problem: r.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ') };
}
