import type { Redis } from 'ioredis';
import { QueueName, ResultJob, resultJobSchema } from './queues';
import { RedisKeys } from './redis-keys';

/**
 * Records a task's result only for the executor that still holds the task job's
 * BullMQ lock, in one Lua script: the lock check and the write cannot be split by a
 * lapse. The first recorded result wins; a later holder finds it and queues it.
 * An executor that was frozen past its lock (GC pause, SIGSTOP, lost Redis link)
 * and wakes up with a result gets `stale` and must neither record nor clean up:
 * the task belongs to whoever took the job over.
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

export class ResultFence {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** BullMQ's lock key of a task job: `<prefix>:<queue>:<jobId>:lock`. */
  lockKey(taskId: string): string {
    return `${this.keys.bullPrefix}:${QueueName.Tasks}:${taskId}:lock`;
  }

  async record(result: ResultJob, token: string): Promise<FenceOutcome> {
    const [outcome, json] = (await this.redis.eval(
      RECORD,
      3,
      this.lockKey(result.taskId),
      this.keys.task(result.taskId),
      this.keys.ledger,
      token,
      JSON.stringify(result),
      result.taskId,
    )) as [string, string];
    if (outcome === 'stale' || outcome === 'released') return { outcome };
    if (outcome === 'recorded' || outcome === 'exists') return { outcome, result: resultJobSchema.parse(JSON.parse(json)) };
    throw new Error(`unexpected fence outcome ${outcome}`);
  }

  /** The result already recorded for a task (by this or an earlier holder of its job), if any. */
  async recorded(taskId: string): Promise<ResultJob | null> {
    const json = await this.redis.hget(this.keys.task(taskId), 'result');
    return json ? resultJobSchema.parse(JSON.parse(json)) : null;
  }

  /** Whether `token` still holds the task job's lock. */
  async holds(taskId: string, token: string): Promise<boolean> {
    return (await this.redis.get(this.lockKey(taskId))) === token;
  }
}
