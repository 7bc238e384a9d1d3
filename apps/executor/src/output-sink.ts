import { OutputAppender } from '@hivemind/shared/state/output-stream';
import { LineSplitter, TaskLog } from '@hivemind/shared/task-format/task-log';

/**
 * Upper bound on one output entry's text, in UTF-8 bytes. Every character is at least one
 * byte, so it also holds at most 10,240 characters: what the pool keeps anyway.
 */
export const MAX_BATCH_BYTES = 10_240;
/** Room kept in each entry for the "skipped" marker line. */
const MARKER_ROOM = 160;
/** What the lines of one entry may take (with their newlines). */
const LINES_BUDGET = MAX_BATCH_BYTES - MARKER_ROOM;
/** Room kept in a cut line for its own marker. */
const CUT_MARKER_ROOM = 100;
/** Most slots for pending lines (a power of two above LINES_BUDGET: every line takes a byte at least). */
const RING = 16_384;
/** Slots a sink starts with: most tasks print a few lines per flush, so the ring grows only when needed. */
const FIRST_RING = 64;

/** The longest prefix of `s` that takes at most `maxBytes` of UTF-8 (a character is never split). */
export function cutUtf8(s: string, maxBytes: number): string {
  let end = Math.min(s.length, maxBytes);
  const c = s.charCodeAt(end - 1);
  if (end < s.length && c >= 0xd800 && c <= 0xdbff) end -= 1;
  const head = s.slice(0, end);
  if (Buffer.byteLength(head, 'utf8') <= maxBytes) return head;
  const buf = Buffer.from(head, 'utf8');
  let i = maxBytes;
  // Back to the first byte of the character that byte maxBytes belongs to.
  while (i > 0 && (buf[i] & 0xc0) === 0x80) i -= 1;
  return buf.toString('utf8', 0, i);
}

/**
 * Where a running task's output goes: every line to the task's bounded log file, and
 * new lines in batches (every flushMs) to the output stream the gateway relays.
 *
 * The stream is bounded in bytes, not only in entries: one flush sends one entry of at
 * most MAX_BATCH_BYTES. A line too long for an entry is cut, with a marker saying how
 * many characters were cut; when a batch overflows, its oldest lines go first and the
 * entry starts with a marker saying how many characters were skipped. Each line costs
 * O(its length), so a chunk of 64 Ki empty lines costs well under a millisecond or two.
 */
export class OutputSink {
  private readonly splitter = new LineSplitter((line) => this.onLine(line));
  // Pending lines, a ring from `first` (`count` of them): their texts, UTF-8 sizes with the
  // newline, and the characters of output each stands for (more than its text when it was
  // cut). Its size is a power of two, doubled when full, up to RING: every line takes a
  // byte at least, so RING slots always suffice.
  private texts: string[] = new Array<string>(FIRST_RING).fill('');
  private sizes = new Int32Array(FIRST_RING);
  private chars = new Float64Array(FIRST_RING);
  private mask = FIRST_RING - 1;
  private first = 0;
  private count = 0;
  private pendingBytes = 0;
  private skipped = 0;
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly out: OutputAppender,
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
    let text = line;
    let size = line.length ? Buffer.byteLength(line, 'utf8') + 1 : 1;
    if (size > LINES_BUDGET) {
      const kept = cutUtf8(line, LINES_BUDGET - 1 - CUT_MARKER_ROOM);
      text = `${kept} [hivemind: ${line.length - kept.length} characters of this line cut in the live view]`;
      size = Buffer.byteLength(text, 'utf8') + 1;
    }
    if (this.count > this.mask) this.grow();
    const slot = (this.first + this.count) & this.mask;
    this.texts[slot] = text;
    this.sizes[slot] = size;
    this.chars[slot] = line.length + 1;
    this.count += 1;
    this.pendingBytes += size;
    // Each line fits LINES_BUDGET, so the newest line always stays.
    while (this.pendingBytes > LINES_BUDGET) {
      const i = this.first;
      this.pendingBytes -= this.sizes[i];
      this.skipped += this.chars[i];
      this.texts[i] = '';
      this.first = (i + 1) & this.mask;
      this.count -= 1;
    }
  }

  /** Doubles the ring, its lines kept in order from slot 0. */
  private grow(): void {
    const size = Math.min(RING, (this.mask + 1) * 2);
    const texts = new Array<string>(size).fill('');
    const sizes = new Int32Array(size);
    const chars = new Float64Array(size);
    for (let k = 0; k < this.count; k++) {
      const i = (this.first + k) & this.mask;
      texts[k] = this.texts[i];
      sizes[k] = this.sizes[i];
      chars[k] = this.chars[i];
    }
    this.texts = texts;
    this.sizes = sizes;
    this.chars = chars;
    this.mask = size - 1;
    this.first = 0;
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (!this.count) return;
      const lines: string[] = [];
      if (this.skipped) lines.push(`[hivemind: ${this.skipped} characters of output skipped in the live view; the result's task_logs.txt keeps its head and tail]`);
      for (let k = 0; k < this.count; k++) {
        const i = (this.first + k) & this.mask;
        lines.push(this.texts[i]);
        this.texts[i] = '';
      }
      this.first = 0;
      this.count = 0;
      this.pendingBytes = 0;
      this.skipped = 0;
      await this.out.append(this.taskId, lines.join('\n')).catch(() => undefined);
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
