import type { Redis } from 'ioredis';
import { RedisKeys } from '@hivemind/shared/queue/redis-keys';
import { LineSplitter, TaskLog } from '@hivemind/shared/task-format/task-log';

/** Upper bound on what one flush sends to Redis: the pool keeps 10,240 characters anyway. */
const MAX_BATCH_CHARS = 10_240;
/**
 * Output entries kept in the stream at most (about 50 MB at worst). The gateway deletes
 * what the pool took; during a long pool outage the oldest go first.
 */
const STREAM_MAXLEN = 5_000;

/**
 * Where a running task's output goes: every line to the task's bounded log file, and
 * new lines in batches (every flushMs, bounded) to the output stream the gateway relays.
 */
export class OutputSink {
  private readonly splitter = new LineSplitter((line) => this.onLine(line));
  private pending: string[] = [];
  private pendingChars = 0;
  private skipped = 0;
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly taskId: string,
    readonly log: TaskLog,
    flushMs = 200,
  ) {
    this.timer = setInterval(() => void this.flush(), flushMs);
  }

  push(chunk: Buffer): void {
    this.splitter.push(chunk);
  }

  /** Adds a line from the worker itself (not the task) to both log and stream. */
  note(line: string): void {
    this.onLine(`[hivemind] ${line}`);
  }

  private onLine(line: string): void {
    this.log.line(line);
    this.pending.push(line);
    this.pendingChars += line.length + 1;
    while (this.pendingChars > MAX_BATCH_CHARS && this.pending.length > 1) {
      const gone = this.pending.shift() as string;
      this.pendingChars -= gone.length + 1;
      this.skipped += gone.length + 1;
    }
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (!this.pending.length) return;
      const lines = this.pending;
      const head = this.skipped ? [`[hivemind: ${this.skipped} characters of output skipped in the live view; task_logs.txt keeps them]`] : [];
      this.pending = [];
      this.pendingChars = 0;
      this.skipped = 0;
      await this.redis
        .xadd(this.keys.output, 'MAXLEN', '~', STREAM_MAXLEN, '*', 'task', this.taskId, 'text', [...head, ...lines].join('\n'))
        .catch(() => undefined);
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.splitter.flush();
    await this.flush();
    await this.log.close();
  }
}
