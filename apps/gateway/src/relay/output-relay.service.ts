import * as os from 'node:os';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { grpcErrorText } from '@hivemind/shared/proto/grpc';
import { OutputEntry, OutputGroupReader, OutputStream } from '@hivemind/shared/state/output-stream';
import { sleep } from '@hivemind/shared/util/ticker';
import { PoolLinkService } from '../pool/pool-link.service';
import { errorMessage } from '@hivemind/shared/util/errors';

/** The pool keeps only this many characters of a task's output. */
export const POOL_OUTPUT_TAIL = 10_240;
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
  private readonly reader: OutputGroupReader;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private lastClaim = 0;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    output: OutputStream,
    private readonly pool: PoolLinkService,
  ) {
    // Blocking reads get a connection of their own.
    this.reader = output.groupReader(`gateway-${os.hostname()}`, 'hivemind-gateway-output');
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.reader.ensureGroup();
    this.loop = this.run();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.reader.close();
    await this.loop?.catch(() => undefined);
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
        const pending = await this.reader.read('0', 1000);
        const fresh = await this.reader.read('>', 1000, pending.length ? undefined : Math.round(this.config.OUTPUT_FLUSH_INTERVAL * 1000));
        const entries = [...pending, ...fresh];
        if (!entries.length) continue;
        const delivered = await this.forward(entries);
        failures = delivered ? 0 : Math.min(failures + 1, 5);
        if (failures) await sleep(500 * 2 ** failures);
      } catch (err) {
        if (this.stopped) return;
        if (/NOGROUP/.test(errorMessage(err))) {
          // The stream (and its group) went away, e.g. Redis lost its data: start again.
          await this.reader.ensureGroup().catch(() => undefined);
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
    const claimed = await this.reader.adoptOrphans(ORPHAN_IDLE_MS);
    if (claimed) this.logger.info({ entries: claimed }, 'took over task output another gateway left undelivered');
  }

  /** Sends each task's new lines; returns whether anything reached the pool. */
  private async forward(entries: OutputEntry[]): Promise<boolean> {
    const byTask = new Map<string, { ids: string[]; lines: string[] }>();
    const done: string[] = [];
    for (const { id, taskId, text } of entries) {
      // An entry trimmed from the stream while pending comes back without fields.
      if (!taskId) {
        done.push(id);
        continue;
      }
      const t = byTask.get(taskId) ?? { ids: [], lines: [] };
      t.ids.push(id);
      t.lines.push(text);
      byTask.set(taskId, t);
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
    await this.reader.done(done);
    return delivered || byTask.size === 0;
  }
}
