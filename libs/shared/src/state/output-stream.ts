import type { Redis } from 'ioredis';
import { RedisKeys } from './redis-keys';

/**
 * Output entries kept in the stream at most. The gateway deletes what the pool took;
 * during a long pool outage the oldest go first. With the output sink's 10 KiB batches
 * the stream holds at most about 5,000 × 10 KiB ≈ 50 MB of text, whatever the tasks
 * print (`MAXLEN ~` trims whole stream nodes, so a hundred entries or so more at times).
 */
export const STREAM_MAXLEN = 5_000;
/** The output relay's consumer group. */
const GROUP = 'gateway';

/** One batch of a task's output lines, as the stream holds it. */
export interface OutputEntry {
  id: string;
  /** Absent for an entry trimmed from the stream while it was pending. */
  taskId: string | null;
  text: string;
}

/** Where a task's live output goes (the executor's output sink writes through it). */
export interface OutputAppender {
  append(taskId: string, text: string): Promise<void>;
}

function entries(res: [string, [string, string[] | null][]][] | null): OutputEntry[] {
  return (res?.[0]?.[1] ?? []).map(([id, fields]) => {
    const f: Record<string, string> = {};
    for (let i = 0; fields && i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
    return { id, taskId: f.task ?? null, text: f.text ?? '' };
  });
}

/**
 * The consumer group's side of the stream, on a connection of its own (blocking reads).
 * Output stays pending in the group until the pool has it (the relay's outbox).
 */
export class OutputGroupReader {
  constructor(
    private readonly conn: Redis,
    private readonly keys: RedisKeys,
    readonly consumer: string,
  ) {}

  /** Creates the group (and the stream) unless it exists. */
  async ensureGroup(): Promise<void> {
    await this.conn.xgroup('CREATE', this.keys.output, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err;
    });
  }

  /** This consumer's pending entries (`0`) or new ones (`>`, waiting up to blockMs). */
  async read(id: '0' | '>', count: number, blockMs?: number): Promise<OutputEntry[]> {
    const key = this.keys.output;
    const res =
      blockMs === undefined
        ? await this.conn.xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', count, 'STREAMS', key, id)
        : await this.conn.xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', key, id);
    return entries(res as [string, [string, string[] | null][]][] | null);
  }

  /**
   * Moves entries other consumers left pending for idleMs to this one, and drops
   * consumers with nothing pending, idle that long. Returns how many entries moved.
   */
  async adoptOrphans(idleMs: number): Promise<number> {
    let cursor = '0-0';
    let claimed = 0;
    do {
      const res = (await this.conn.xautoclaim(this.keys.output, GROUP, this.consumer, idleMs, cursor, 'COUNT', 1000, 'JUSTID')) as [string, string[]];
      cursor = res[0];
      claimed += res[1].length;
    } while (cursor !== '0-0');
    const consumers = (await this.conn.xinfo('CONSUMERS', this.keys.output, GROUP)) as unknown[][];
    for (const c of consumers) {
      const f: Record<string, unknown> = {};
      for (let i = 0; i + 1 < c.length; i += 2) f[String(c[i])] = c[i + 1];
      if (f.name !== this.consumer && Number(f.pending) === 0 && Number(f.idle) > idleMs) {
        await this.conn.xgroup('DELCONSUMER', this.keys.output, GROUP, String(f.name));
      }
    }
    return claimed;
  }

  /** Entries the pool has (or that will never be delivered): acknowledged and deleted. */
  async done(ids: string[]): Promise<void> {
    if (!ids.length) return;
    await this.conn.xack(this.keys.output, GROUP, ...ids);
    await this.conn.xdel(this.keys.output, ...ids);
  }

  close(): void {
    this.conn.disconnect();
  }
}

/** A plain reader of new entries (never through the group), on a connection of its own. */
export class OutputTail {
  constructor(
    private readonly conn: Redis,
    private readonly keys: RedisKeys,
    /** The newest entry when the tail opened: everything after it is new. */
    private last: string,
  ) {}

  /** Entries added since the previous read (or since the tail opened); [] after blockMs without any. */
  async next(count: number, blockMs: number): Promise<OutputEntry[]> {
    const got = entries((await this.conn.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', this.keys.output, this.last)) as [string, [string, string[] | null][]][] | null);
    if (got.length) this.last = got[got.length - 1].id;
    return got;
  }

  close(): void {
    this.conn.disconnect();
  }
}

/**
 * Task output on its way to the pool (a stream of batches: fields task, text).
 * Executors append (OutputSink, every OUTPUT_FLUSH_INTERVAL / 2); the gateway's output
 * relay reads it through the `gateway` consumer group and deletes each entry once the
 * pool has it (or refused it for good); appends trim it to about STREAM_MAXLEN. The live
 * output view (SSE) reads it without the group.
 */
export class OutputStream implements OutputAppender {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async append(taskId: string, text: string): Promise<void> {
    await this.redis.xadd(this.keys.output, 'MAXLEN', '~', STREAM_MAXLEN, '*', 'task', taskId, 'text', text);
  }

  /** The relay's reader for `consumer`, on a new connection. */
  groupReader(consumer: string, connectionName: string): OutputGroupReader {
    return new OutputGroupReader(this.redis.duplicate({ connectionName }), this.keys, consumer);
  }

  /**
   * A reader of entries added from now on, on a new connection. It starts after the
   * newest entry now (not at `$`, which means "newer than when each read starts" and
   * loses what arrives between two reads).
   */
  async tail(connectionName: string): Promise<OutputTail> {
    const newest = (await this.redis.xrevrange(this.keys.output, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    return new OutputTail(this.redis.duplicate({ connectionName, maxRetriesPerRequest: null }), this.keys, newest);
  }

  /** How many entries the stream holds. */
  length(): Promise<number> {
    return this.redis.xlen(this.keys.output);
  }
}
