import * as os from 'node:os';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { grpcErrorText } from '@hivemind/shared/proto/grpc';
import { RedisKeys } from '@hivemind/shared/queue/redis-keys';
import { sleep } from '@hivemind/shared/util/ticker';
import { PoolLinkService } from '../pool/pool-link.service';
import { errorMessage } from '@hivemind/shared/util/errors';

/** The pool keeps only this many characters of a task's output. */
export const POOL_OUTPUT_TAIL = 10_240;
const GROUP = 'gateway';
/**
 * Output another consumer of the group left pending this long is taken over: a gateway
 * that died, or this gateway under an earlier hostname (a recreated container).
 */
export const ORPHAN_IDLE_MS = 60_000;
const CLAIM_EVERY_MS = 15_000;

/** Joins a task's new lines into one upload, keeping the tail the pool would keep anyway. */
export function batchOutput(lines: string[], cap = POOL_OUTPUT_TAIL): string {
  const text = lines.join('\n');
  if (text.length <= cap) return text;
  const kept = text.slice(text.length - cap);
  return `[hivemind: ${text.length - cap} characters skipped]\n${kept.slice(kept.indexOf('\n') + 1)}`;
}

/**
 * Relays task output from the executors (a Redis stream) to the pool with
 * TaskOutputUpload: new lines only, batched per task, at most OUTPUT_FLUSH_INTERVAL late,
 * and kept in the stream until the pool has them.
 */
@Injectable()
export class OutputRelayService implements OnApplicationBootstrap, OnApplicationShutdown {
  private reader: Redis;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private readonly consumer = `gateway-${os.hostname()}`;
  private lastClaim = 0;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(REDIS) redis: Redis,
    private readonly keys: RedisKeys,
    private readonly pool: PoolLinkService,
  ) {
    // Blocking reads get a connection of their own.
    this.reader = redis.duplicate({ connectionName: 'hivemind-gateway-output' });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.reader.xgroup('CREATE', this.keys.output, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err;
    });
    this.loop = this.run();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.reader.disconnect();
    await this.loop?.catch(() => undefined);
  }

  private async read(id: '0' | '>', blockMs?: number): Promise<[string, string[]][]> {
    const key = this.keys.output;
    const res = (
      blockMs === undefined
        ? await this.reader.xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', 1000, 'STREAMS', key, id)
        : await this.reader.xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', 1000, 'BLOCK', blockMs, 'STREAMS', key, id)
    ) as [string, [string, string[] | null][]][] | null;
    return (res?.[0]?.[1] ?? []) as [string, string[]][];
  }

  /**
   * Output the pool has not taken yet stays pending in the stream (this is its outbox,
   * kept across a gateway restart) and goes out first, with a growing pause while the
   * pool stays unreachable.
   */
  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        // Undelivered entries first, then new ones: one task the pool keeps refusing to
        // take must not hold back everyone else's output.
        if (Date.now() - this.lastClaim >= CLAIM_EVERY_MS) await this.claimOrphans();
        const pending = await this.read('0');
        const fresh = await this.read('>', pending.length ? undefined : Math.round(this.config.OUTPUT_FLUSH_INTERVAL * 1000));
        const entries = [...pending, ...fresh];
        if (!entries.length) continue;
        const delivered = await this.forward(entries);
        failures = delivered ? 0 : Math.min(failures + 1, 5);
        if (failures) await sleep(500 * 2 ** failures);
      } catch (err) {
        if (this.stopped) return;
        if (/NOGROUP/.test(errorMessage(err))) {
          // The stream (and its group) went away, e.g. Redis lost its data: start again.
          await this.reader.xgroup('CREATE', this.keys.output, GROUP, '0', 'MKSTREAM').catch(() => undefined);
          continue;
        }
        this.logger.warn({ err: errorMessage(err) }, 'output relay read failed; retrying');
        await sleep(1000);
      }
    }
  }

  /**
   * Moves entries that other consumers left pending for ORPHAN_IDLE_MS to this one, so
   * they are read with our own pending entries. Consumers with nothing left pending
   * and long idle are dropped from the group.
   */
  private async claimOrphans(): Promise<void> {
    this.lastClaim = Date.now();
    let cursor = '0-0';
    let claimed = 0;
    do {
      const res = (await this.reader.xautoclaim(this.keys.output, GROUP, this.consumer, ORPHAN_IDLE_MS, cursor, 'COUNT', 1000, 'JUSTID')) as [string, string[]];
      cursor = res[0];
      claimed += res[1].length;
    } while (cursor !== '0-0');
    if (claimed) this.logger.info({ entries: claimed }, 'took over task output another gateway left undelivered');
    const consumers = (await this.reader.xinfo('CONSUMERS', this.keys.output, GROUP)) as unknown[][];
    for (const c of consumers) {
      const f: Record<string, unknown> = {};
      for (let i = 0; i + 1 < c.length; i += 2) f[String(c[i])] = c[i + 1];
      if (f.name !== this.consumer && Number(f.pending) === 0 && Number(f.idle) > ORPHAN_IDLE_MS) {
        await this.reader.xgroup('DELCONSUMER', this.keys.output, GROUP, String(f.name));
      }
    }
  }

  /** Sends each task's new lines; returns whether anything reached the pool. */
  private async forward(entries: [string, string[] | null][]): Promise<boolean> {
    const byTask = new Map<string, { ids: string[]; lines: string[] }>();
    const done: string[] = [];
    for (const [id, fields] of entries) {
      const f: Record<string, string> = {};
      for (let i = 0; fields && i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
      // An entry trimmed from the stream while pending comes back without fields.
      if (!f.task) {
        done.push(id);
        continue;
      }
      const t = byTask.get(f.task) ?? { ids: [], lines: [] };
      t.ids.push(id);
      t.lines.push(f.text ?? '');
      byTask.set(f.task, t);
    }
    let delivered = false;
    await Promise.all(
      [...byTask].map(async ([taskId, t]) => {
        try {
          const res = await this.pool.call('TaskOutputUpload', this.pool.client.workers, this.pool.client.workers.taskOutputUpload, (token) => ({
            task_id: taskId,
            output: batchOutput(t.lines),
            token,
          }));
          // A refusal (e.g. a task the pool does not know) will not change: drop the lines.
          if (!res.success) this.logger.debug({ taskId, message: res.message }, 'pool refused task output');
          delivered = true;
          done.push(...t.ids);
        } catch (err) {
          this.logger.debug({ taskId, err: grpcErrorText(err) }, 'task output not delivered; kept for the next try');
        }
      }),
    );
    if (done.length) {
      await this.reader.xack(this.keys.output, GROUP, ...done);
      await this.reader.xdel(this.keys.output, ...done);
    }
    return delivered || byTask.size === 0;
  }
}
