import { promises as fs } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/**
 * A task's full output on disk, bounded: the first `headBytes` are written as they
 * come, the last `tailBytes` are kept in memory, and what fell between them is
 * replaced by one marker line that says how much was dropped.
 */
export class TaskLog {
  private head = 0;
  private tail: Buffer[] = [];
  private tailSize = 0;
  private dropped = 0;
  private droppedLines = 0;
  private handle: fs.FileHandle | null = null;
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly headBytes: number,
    private readonly tailBytes: number,
  ) {}

  async open(): Promise<void> {
    this.handle = await fs.open(this.file, 'w', 0o600);
  }

  /** Appends one line (no newline needed). */
  line(text: string): void {
    const buf = Buffer.from(text.endsWith('\n') ? text : `${text}\n`);
    if (this.head + buf.length <= this.headBytes && this.tailSize === 0) {
      this.head += buf.length;
      const h = this.handle;
      if (h) this.writes = this.writes.then(() => h.write(buf));
      return;
    }
    this.tail.push(buf);
    this.tailSize += buf.length;
    while (this.tailSize > this.tailBytes && this.tail.length > 1) {
      const gone = this.tail.shift() as Buffer;
      this.tailSize -= gone.length;
      this.dropped += gone.length;
      this.droppedLines += 1;
    }
  }

  get droppedBytes(): number {
    return this.dropped;
  }

  /** Writes the marker and the tail, and closes the file. */
  async close(): Promise<void> {
    await this.writes;
    const h = this.handle;
    if (!h) return;
    this.handle = null;
    if (this.dropped > 0) {
      await h.write(`\n[hivemind: ${this.dropped} bytes (${this.droppedLines} lines) of output dropped here; the head and the tail are kept]\n\n`);
    }
    for (const b of this.tail) await h.write(b);
    await h.close();
  }
}

/**
 * Splits a byte stream into lines. Lines longer than maxLine are cut, so a task
 * that prints without newlines cannot make the worker hold unbounded text.
 */
export class LineSplitter {
  private partial = '';
  // Keeps a UTF-8 character split across two chunks whole.
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLine = 64 * 1024,
  ) {}

  push(chunk: Buffer | string): void {
    let text = this.partial + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    let nl: number;
    while ((nl = text.indexOf('\n')) !== -1) {
      this.emit(text.slice(0, nl));
      text = text.slice(nl + 1);
    }
    while (text.length > this.maxLine) {
      this.emit(text.slice(0, this.maxLine));
      text = text.slice(this.maxLine);
    }
    this.partial = text;
  }

  flush(): void {
    this.partial += this.decoder.end();
    if (this.partial) this.emit(this.partial);
    this.partial = '';
  }

  private emit(line: string): void {
    this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}
