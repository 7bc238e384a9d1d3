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

/** The pool keeps only this many characters of a task's output. */
export const POOL_OUTPUT_TAIL = 10_240;
const GROUP = 'gateway';

/** Joins a task's new lines into one upload, keeping the tail the pool would keep anyway. */
export function batchOutput(lines: string[], cap = POOL_OUTPUT_TAIL): string {
  const text = lines.join('\n');
  if (text.length <= cap) return text;
  const kept = text.slice(text.length - cap);
  return `[hivemind: ${text.length - cap} characters skipped]\n${kept.slice(kept.indexOf('\n') + 1)}`;
}

/**
 * Relays task output from the executors (a Redis stream) to the pool with
 * TaskOutputUpload: new lines only, batched per task, at most OUTPUT_FLUSH_INTERVAL late.
 */
@Injectable()
export class OutputRelayService implements OnApplicationBootstrap, OnApplicationShutdown {
  private reader: Redis;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private readonly consumer = `gateway-${os.hostname()}`;

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

  private async run(): Promise<void> {
    let pendingFirst = true;
    while (!this.stopped) {
      try {
        const block = Math.round(this.config.OUTPUT_FLUSH_INTERVAL * 1000);
        const res = (await this.reader.xreadgroup(
          'GROUP', GROUP, this.consumer, 'COUNT', 1000, 'BLOCK', block, 'STREAMS', this.keys.output, pendingFirst ? '0' : '>',
        )) as [string, [string, string[]][]][] | null;
        const entries = res?.[0]?.[1] ?? [];
        if (pendingFirst && entries.length === 0) pendingFirst = false;
        if (entries.length) await this.forward(entries);
      } catch (err) {
        if (this.stopped) return;
        this.logger.warn({ err: (err as Error).message }, 'output relay read failed; retrying');
        await sleep(1000);
      }
    }
  }

  private async forward(entries: [string, string[]][]): Promise<void> {
    const byTask = new Map<string, string[]>();
    for (const [, fields] of entries) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
      if (!f.task) continue;
      const list = byTask.get(f.task) ?? [];
      list.push(f.text ?? '');
      byTask.set(f.task, list);
    }
    await Promise.all(
      [...byTask].map(async ([taskId, lines]) => {
        try {
          const res = await this.pool.call('TaskOutputUpload', this.pool.client.workers, this.pool.client.workers.taskOutputUpload, (token) => ({
            task_id: taskId,
            output: batchOutput(lines),
            token,
          }));
          if (!res.success) this.logger.debug({ taskId, message: res.message }, 'pool refused task output');
        } catch (err) {
          // Live output is best effort; the whole log travels in the result zip.
          this.logger.debug({ taskId, err: grpcErrorText(err) }, 'task output not delivered');
        }
      }),
    );
    const ids = entries.map(([id]) => id);
    await this.reader.xack(this.keys.output, GROUP, ...ids);
    await this.reader.xdel(this.keys.output, ...ids);
  }
}
