import { Queue } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { bullPrefix } from '../state/redis-keys';
import { OUTCOME_CODES } from '../task-format/outcome';
import { TASK_ID_PATTERN } from '../task-format/task-id';
import { IMAGE_NAME_PATTERN } from '../task-format/task-manifest';

/**
 * Every queue the project uses, and the typed payload of its jobs.
 * Do not rename a queue or change a payload incompatibly without a migration:
 * jobs already in Redis carry the old shape.
 */
export const QueueName = {
  /** gateway -> executor: an accepted task to run. Job id = task id. */
  Tasks: 'tasks',
  /** executor -> gateway: a finished task's result to upload. Job id = task id. */
  Results: 'results',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

export const taskRequestSchema = z.object({
  cpuScore: z.number().min(0),
  gpuScore: z.number().min(0),
  memoryGb: z.number().int().min(0),
  gpuMemoryGb: z.number().int().min(0),
});

export const containerLimitsSchema = z.object({
  nanoCpus: z.number().int().positive(),
  memoryBytes: z.number().int().positive(),
});
export type ContainerLimits = z.infer<typeof containerLimitsSchema>;

export const taskJobSchema = z.object({
  // The task's files are derived from its id (WorkDir); no path travels in a job.
  taskId: z.string().regex(TASK_ID_PATTERN),
  root: z.string(),
  entry: z.object({ file: z.string().min(1), kind: z.enum(['shell', 'python']) }),
  /** The image the task's hivemind.json names (a TASK_IMAGES name); absent: the default image. */
  image: z.string().regex(IMAGE_NAME_PATTERN).optional(),
  request: taskRequestSchema,
  limits: containerLimitsSchema,
  /** When ExecuteTask arrived at the gateway (ms since epoch). */
  receivedAt: z.number().int(),
  /** When the gateway had stored and accepted it. */
  acceptedAt: z.number().int(),
});
export type TaskJob = z.infer<typeof taskJobSchema>;

export const resultJobSchema = z.object({
  taskId: z.string().regex(TASK_ID_PATTERN),
  status: z.enum(['Success', 'Failed', 'Stopped']),
  /** Why the task ended, as a code (absent on results queued before codes existed). */
  code: z.enum(OUTCOME_CODES).optional(),
  reason: z.string(),
  exitCode: z.number().int().nullable(),
  receivedAt: z.number().int(),
  /** When the executor picked the task up. */
  startedAt: z.number().int(),
  finishedAt: z.number().int(),
  /** The node's CPT estimate and its measured inputs, as in execution_log.txt (absent when the task never ran). */
  cpt: z
    .object({
      total: z.number(),
      durationSeconds: z.number(),
      avgCpuPercent: z.number(),
      avgMemoryPercent: z.number(),
      avgGpuPercent: z.number(),
      pausedSeconds: z.number(),
    })
    .optional(),
});
export type ResultJob = z.infer<typeof resultJobSchema>;

/**
 * Options of every result job: the task id as job id (one result per task), retries
 * without a practical limit (the gateway's backoff picks the delay: up to 30 s while the
 * pool cannot answer, minutes after it refused the result, whose retries end after
 * RESULT_REFUSED_RETRY), and removal once done or failed for good: a kept job would
 * block a later run of the same task id.
 */
export function resultJobOptions(taskId: string) {
  return { jobId: taskId, attempts: 1_000_000, backoff: { type: 'custom' }, removeOnComplete: true, removeOnFail: true };
}

/** Parses a payload read back from Redis; a bad one is a permanent failure. */
export function parsePayload<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const r = schema.safeParse(data);
  if (!r.success) {
    throw new Error(`invalid ${what} payload: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}

/** Where the node's queues live: REDIS_URL and REDIS_PREFIX. */
export interface QueueSite {
  REDIS_URL: string;
  REDIS_PREFIX: string;
}

/**
 * Connection options for BullMQ, from REDIS_URL (redis:// or rediss://): BullMQ opens
 * and closes its connections itself, apart from the service's state connection, with
 * the settings its workers need (no per-command retry limit, capped reconnection delay).
 */
export function bullConnection(url: string, name: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`REDIS_URL is not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`REDIS_URL must start with redis:// or rediss://, not ${u.protocol}//`);
  const db = u.pathname.replace(/^\//, '');
  if (db && !/^\d+$/.test(db)) throw new Error(`REDIS_URL names database ${JSON.stringify(db)}; a database is a number`);
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: db ? Number(db) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    connectionName: `hivemind-${name}`,
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 5000),
  };
}

/** BullMQ's options for a queue or worker of the node: its own connection and the node's prefix. */
export function bullOptions(site: QueueSite, name: string): { connection: RedisOptions; prefix: string } {
  return { connection: bullConnection(site.REDIS_URL, name), prefix: bullPrefix(site.REDIS_PREFIX) };
}

/** Opens a queue on a connection of its own, with the error listener every queue needs. */
export function openQueue(name: QueueName, site: QueueSite, service: string, logger: Logger): Queue {
  const q = new Queue(name, bullOptions(site, `${service}-${name}`));
  q.on('error', (err) => logger.warn({ err: err.message, queue: name }, 'queue error'));
  return q;
}
