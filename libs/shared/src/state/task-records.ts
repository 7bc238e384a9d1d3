import type { Redis } from 'ioredis';
import { z } from 'zod';
import { QueueName, ResultJob, resultJobSchema } from '../queue/queues';
import { RedisKeys } from './redis-keys';
import { defineScript, parseJson } from './scripts';

const ms = z.coerce.number().finite();

/** A task's timeline on this node, as stored (hash fields, all optional). */
export const taskRecordSchema = z.object({
  /** When admission stored and queued the task. */
  acceptedAt: ms.optional(),
  /** Who pushed it (the gRPC peer). */
  peer: z.string().optional(),
  /** When the gateway's "accepted" reply went out: no result is uploaded within the guard after it. */
  repliedAt: ms.optional(),
  /** The task's result, recorded once behind its job's lock (the first recorded wins). */
  result: z.string().optional(),
  /** When the pool took the result: a later copy is never uploaded again. */
  uploadedAt: ms.optional(),
});

export interface TaskRecord {
  acceptedAt: number | null;
  peer: string | null;
  repliedAt: number | null;
  result: ResultJob | null;
  uploadedAt: number | null;
}

/**
 * Records a task's result only for the executor that still holds the task job's BullMQ
 * lock, in one script: the lock check and the write cannot be split by a lapse. The first
 * recorded result wins; a later holder finds it and queues it. An executor frozen past
 * its lock (GC pause, SIGSTOP, lost Redis link) that wakes up with a result gets `stale`
 * and must neither record nor clean up: the task belongs to whoever took the job over.
 * KEYS: job lock, task record, ledger. ARGV: lock token, result JSON, task id.
 */
const RECORD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'stale', ''} end
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 0 then return {'released', ''} end
if redis.call('HSETNX', KEYS[2], 'result', ARGV[2]) == 1 then return {'recorded', ARGV[2]} end
return {'exists', redis.call('HGET', KEYS[2], 'result')}
`;

export type FenceOutcome =
  | { outcome: 'recorded'; result: ResultJob }
  | { outcome: 'exists'; result: ResultJob }
  | { outcome: 'stale' }
  | { outcome: 'released' };

/**
 * Each task's record (hash `task:<id>`: acceptedAt, peer, repliedAt, result, uploadedAt).
 * Created by the gateway's admission (acceptedAt, peer) and updated by it when the reply
 * goes out (repliedAt); the executor that runs the task records its result behind the
 * job's lock (recordResult); the gateway's result upload sets uploadedAt when the pool
 * takes the result. Deleted by the gateway when the task is over for the node (finish,
 * admission roll-back) and by the executors' reconciler for a task never replied to.
 */
export class TaskRecords {
  private readonly recordScript: (...args: (string | number)[]) => Promise<[string, string]>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.recordScript = defineScript<[string, string]>(redis, 'hivemindRecordResult', 3, RECORD);
  }

  async accepted(taskId: string, acceptedAt: number, peer: string): Promise<void> {
    await this.redis.hset(this.keys.task(taskId), { acceptedAt, peer });
  }

  async replied(taskId: string, at = Date.now()): Promise<void> {
    await this.redis.hset(this.keys.task(taskId), 'repliedAt', at);
  }

  async uploaded(taskId: string, at = Date.now()): Promise<void> {
    await this.redis.hset(this.keys.task(taskId), 'uploadedAt', at);
  }

  /** The task's record, or null when there is none; a field that does not parse reads as absent. */
  async get(taskId: string): Promise<TaskRecord | null> {
    const raw = await this.redis.hgetall(this.keys.task(taskId));
    if (!Object.keys(raw).length) return null;
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) {
      const one = taskRecordSchema.shape[k as keyof typeof taskRecordSchema.shape]?.safeParse(v);
      if (one?.success) fields[k] = one.data;
    }
    const f = fields as z.infer<typeof taskRecordSchema>;
    return {
      acceptedAt: f.acceptedAt ?? null,
      peer: f.peer ?? null,
      repliedAt: f.repliedAt ?? null,
      result: parseJson(resultJobSchema, f.result),
      uploadedAt: f.uploadedAt ?? null,
    };
  }

  async isUploaded(taskId: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.task(taskId), 'uploadedAt')) === 1;
  }

  async isReplied(taskId: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.task(taskId), 'repliedAt')) === 1;
  }

  async remove(taskId: string): Promise<void> {
    await this.redis.del(this.keys.task(taskId));
  }

  /** BullMQ's lock key of a task job: `<prefix>:<queue>:<jobId>:lock`. */
  private lockKey(taskId: string): string {
    return `${this.keys.bullPrefix}:${QueueName.Tasks}:${taskId}:lock`;
  }

  /** Records the task's result if `token` still holds its job's lock and the task still holds its slot. */
  async recordResult(result: ResultJob, token: string): Promise<FenceOutcome> {
    const [outcome, json] = await this.recordScript(this.lockKey(result.taskId), this.keys.task(result.taskId), this.keys.ledger, token, JSON.stringify(result), result.taskId);
    if (outcome === 'stale' || outcome === 'released') return { outcome };
    if (outcome === 'recorded' || outcome === 'exists') return { outcome, result: resultJobSchema.parse(JSON.parse(json)) };
    throw new Error(`unexpected fence outcome ${outcome}`);
  }

  /** The result already recorded for a task (by this or an earlier holder of its job), if any. */
  async recordedResult(taskId: string): Promise<ResultJob | null> {
    return parseJson(resultJobSchema, await this.redis.hget(this.keys.task(taskId), 'result'));
  }

  /** Whether `token` still holds the task job's lock. */
  async holdsJobLock(taskId: string, token: string): Promise<boolean> {
    return (await this.redis.get(this.lockKey(taskId))) === token;
  }
}
