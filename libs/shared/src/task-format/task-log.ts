import { promises as fs } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

const CHUNK = 64 * 1024;
const NEWLINE = 10;
/** How far the tail may grow past tailBytes before its oldest lines are dropped (in one go). */
const TRIM_SLACK = 64 * 1024;

/**
 * Bytes in fixed-size chunks: appending at the end and dropping from the front both
 * cost O(1) per byte, whatever the lines' lengths (no per-line objects, no Array.shift).
 */
class ByteQueue {
  private chunks: Buffer[] = [];
  /** Index of the first live chunk (chunks before it are spent). */
  private c0 = 0;
  /** Offset of the first live byte in chunks[c0]. */
  private first = 0;
  /** Bytes used in the last chunk. */
  private last = CHUNK;
  size = 0;

  /** Appends `text` (`textBytes` of UTF-8) and a newline. */
  pushLine(text: string, textBytes: number): void {
    const n = this.chunks.length;
    if (n > 0 && CHUNK - this.last > textBytes) {
      const c = this.chunks[n - 1];
      if (textBytes) c.write(text, this.last, 'utf8');
      c[this.last + textBytes] = NEWLINE;
      this.last += textBytes + 1;
      this.size += textBytes + 1;
      return;
    }
    if (textBytes) this.push(Buffer.from(text, 'utf8'));
    this.push(NEWLINE_BUF);
  }

  private push(buf: Buffer): void {
    let off = 0;
    while (off < buf.length) {
      if (this.last === CHUNK) {
        this.chunks.push(Buffer.allocUnsafe(CHUNK));
        this.last = 0;
      }
      const n = buf.copy(this.chunks[this.chunks.length - 1], this.last, off);
      this.last += n;
      off += n;
    }
    this.size += buf.length;
  }

  /** Drops the first n bytes (n <= size). */
  drop(n: number): void {
    this.size -= n;
    if (this.size === 0) {
      this.clear();
      return;
    }
    this.first += n;
    while (this.first >= CHUNK) {
      this.first -= CHUNK;
      this.c0 += 1;
    }
    // Let spent chunks go, now and then (amortized O(1)).
    if (this.c0 > 16 && this.c0 * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.c0);
      this.c0 = 0;
    }
  }

  /** The live bytes, as views of the chunks. */
  buffers(): Buffer[] {
    const out: Buffer[] = [];
    const lastIdx = this.chunks.length - 1;
    for (let i = this.c0; i <= lastIdx; i++) {
      const start = i === this.c0 ? this.first : 0;
      const end = i === lastIdx ? this.last : CHUNK;
      if (end > start) out.push(this.chunks[i].subarray(start, end));
    }
    return out;
  }

  /** Takes every live byte out (the views stay valid: new bytes go after them). */
  takeAll(): Buffer[] {
    const out = this.buffers();
    const last = this.chunks[this.chunks.length - 1];
    if (last && this.last < CHUNK) {
      // Keep filling the last chunk's free end.
      this.chunks = [last];
      this.c0 = 0;
      this.first = this.last;
      this.size = 0;
    } else {
      this.clear();
    }
    return out;
  }

  private clear(): void {
    this.chunks = [];
    this.c0 = 0;
    this.first = 0;
    this.last = CHUNK;
    this.size = 0;
  }
}

const NEWLINE_BUF = Buffer.from('\n');

/** A FIFO of numbers: a ring that doubles when full; push and shift are O(1) amortized. */
class NumberFifo {
  private ring = new Float64Array(1024);
  private head = 0;
  length = 0;

  push(n: number): void {
    if (this.length === this.ring.length) {
      const bigger = new Float64Array(this.ring.length * 2);
      bigger.set(this.ring.subarray(this.head));
      bigger.set(this.ring.subarray(0, this.head), this.ring.length - this.head);
      this.ring = bigger;
      this.head = 0;
    }
    this.ring[(this.head + this.length) & (this.ring.length - 1)] = n;
    this.length += 1;
  }

  shift(): number {
    const n = this.ring[this.head];
    this.head = (this.head + 1) & (this.ring.length - 1);
    this.length -= 1;
    return n;
  }
}

async function writeAll(h: fs.FileHandle, bufs: Buffer[]): Promise<void> {
  for (const b of bufs) {
    let off = 0;
    while (off < b.length) off += (await h.write(b, off, b.length - off)).bytesWritten;
  }
}

/**
 * A task's full output on disk, bounded: the first `headBytes` are written as they
 * come, the last `tailBytes` are kept in memory, and what fell between them is
 * replaced by one marker line that says how much was dropped (bytes and lines, exact).
 * The tail keeps whole lines (the last line always, even when longer than tailBytes).
 *
 * Each line costs O(its length) amortized, however many lines the tail holds: bytes
 * live in 64 KiB chunks and line lengths in a FIFO, so a flood of empty lines costs
 * about as much per byte as any other output. Head writes are coalesced: while one
 * write is in flight, new head lines gather and go out in the next.
 */
export class TaskLog {
  private head = 0;
  private inTail = false;
  private readonly headQueue = new ByteQueue();
  private readonly tail = new ByteQueue();
  private readonly tailLines = new NumberFifo();
  private dropped = 0;
  private droppedCount = 0;
  private handle: fs.FileHandle | null = null;
  private writing: Promise<void> | null = null;
  private writeError: unknown = null;

  constructor(
    readonly file: string,
    private readonly headBytes: number,
    private readonly tailBytes: number,
  ) {}

  async open(): Promise<void> {
    this.handle = await fs.open(this.file, 'w', 0o600);
  }

  /** Appends one line (no newline needed; one trailing newline is not doubled). */
  line(text: string): void {
    const body = text.length && text.charCodeAt(text.length - 1) === NEWLINE ? text.slice(0, -1) : text;
    const textBytes = body.length ? Buffer.byteLength(body, 'utf8') : 0;
    const bytes = textBytes + 1;
    if (!this.inTail && this.head + bytes <= this.headBytes) {
      this.head += bytes;
      if (this.handle) {
        this.headQueue.pushLine(body, textBytes);
        if (!this.writing) {
          this.writing = this.writeHead(this.handle).finally(() => {
            this.writing = null;
          });
        }
      }
      return;
    }
    this.inTail = true;
    this.tail.pushLine(body, textBytes);
    this.tailLines.push(bytes);
    if (this.tail.size > this.tailBytes + TRIM_SLACK) this.trim();
  }

  /**
   * Drops the oldest lines of the tail while it is over tailBytes (keeping one line at
   * least). Run in batches: the lines it keeps are the same as trimming after every line.
   */
  private trim(): void {
    let size = this.tail.size;
    let gone = 0;
    let lines = 0;
    while (size > this.tailBytes && this.tailLines.length > 1) {
      const n = this.tailLines.shift();
      size -= n;
      gone += n;
      lines += 1;
    }
    if (!gone) return;
    this.tail.drop(gone);
    this.dropped += gone;
    this.droppedCount += lines;
  }

  /** Bytes of output dropped between the head and the tail so far. */
  get droppedBytes(): number {
    this.trim();
    return this.dropped;
  }

  /** Lines of output dropped between the head and the tail so far. */
  get droppedLines(): number {
    this.trim();
    return this.droppedCount;
  }

  private async writeHead(h: fs.FileHandle): Promise<void> {
    try {
      while (this.headQueue.size) await writeAll(h, this.headQueue.takeAll());
    } catch (err) {
      this.writeError ??= err;
      this.headQueue.takeAll();
    }
  }

  /** Writes the marker and the tail, and closes the file. */
  async close(): Promise<void> {
    while (this.writing) await this.writing;
    const h = this.handle;
    if (!h) return;
    this.handle = null;
    this.trim();
    try {
      if (this.writeError) throw this.writeError;
      if (this.dropped > 0) {
        await writeAll(h, [Buffer.from(`\n[hivemind: ${this.dropped} bytes (${this.droppedCount} lines) of output dropped here; the head and the tail are kept]\n\n`)]);
      }
      await writeAll(h, this.tail.buffers());
    } finally {
      await h.close();
    }
  }
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;

/**
 * Splits a byte stream into lines. Lines longer than maxLine characters are cut, so a
 * task that prints without newlines cannot make the worker hold unbounded text. Linear
 * in the input: each chunk is scanned once, and a partial line is kept as pieces.
 */
export class LineSplitter {
  private parts: string[] = [];
  private partLen = 0;
  // Keeps a UTF-8 character split across two chunks whole.
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLine = 64 * 1024,
  ) {}

  push(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    let pos = 0;
    while (pos < text.length) {
      // Runs of empty lines (a flood of newlines) skip the search and the slicing.
      if (!this.partLen && text.charCodeAt(pos) === NEWLINE) {
        this.onLine('');
        pos += 1;
        continue;
      }
      const nl = text.indexOf('\n', pos);
      const end = nl === -1 ? text.length : nl;
      // Cut what would make the line longer than maxLine.
      while (this.partLen + (end - pos) > this.maxLine) {
        let cut = pos + this.maxLine - this.partLen;
        // Keep a surrogate pair whole (unless that would cut nothing).
        if (cut - 1 > pos && isHighSurrogate(text.charCodeAt(cut - 1))) cut -= 1;
        this.emit(this.take(text.slice(pos, cut)));
        pos = cut;
      }
      if (nl === -1) {
        this.parts.push(text.slice(pos));
        this.partLen += text.length - pos;
        return;
      }
      this.emit(this.take(text.slice(pos, nl)));
      pos = nl + 1;
    }
  }

  flush(): void {
    const rest = this.decoder.end();
    if (rest) this.push(rest);
    if (this.partLen) this.emit(this.take(''));
  }

  /** The partial line so far followed by `piece`; empties the partial line. */
  private take(piece: string): string {
    if (!this.parts.length) return piece;
    this.parts.push(piece);
    const line = this.parts.join('');
    this.parts = [];
    this.partLen = 0;
    return line;
  }

  private emit(line: string): void {
    this.onLine(line.length && line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line);
  }
}
