import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LineSplitter, TaskLog } from './task-log';

const dirs: string[] = [];
async function tmpFile(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-log-'));
  dirs.push(dir);
  return path.join(dir, 'l');
}
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

const marker = (bytes: number, lines: number) =>
  `\n[hivemind: ${bytes} bytes (${lines} lines) of output dropped here; the head and the tail are kept]\n\n`;

/** What TaskLog wrote before it kept its tail in chunks: one Buffer per line, trimmed after each. */
function reference(lines: string[], headBytes: number, tailBytes: number): string {
  const out: Buffer[] = [];
  let head = 0;
  const tail: Buffer[] = [];
  let tailSize = 0;
  let dropped = 0;
  let droppedLines = 0;
  for (const text of lines) {
    const buf = Buffer.from(text.endsWith('\n') ? text : `${text}\n`);
    if (head + buf.length <= headBytes && tailSize === 0) {
      head += buf.length;
      out.push(buf);
      continue;
    }
    tail.push(buf);
    tailSize += buf.length;
    while (tailSize > tailBytes && tail.length > 1) {
      const gone = tail.shift() as Buffer;
      tailSize -= gone.length;
      dropped += gone.length;
      droppedLines += 1;
    }
  }
  if (dropped) out.push(Buffer.from(marker(dropped, droppedLines)));
  return Buffer.concat([...out, ...tail]).toString();
}

describe('TaskLog', () => {
  it('keeps everything while under the head size', async () => {
    const file = await tmpFile();
    const log = new TaskLog(file, 1024, 1024);
    await log.open();
    for (let i = 0; i < 10; i++) log.line(`line ${i}`);
    await log.close();
    expect((await fs.readFile(file, 'utf8')).split('\n').filter(Boolean)).toHaveLength(10);
  });

  it('keeps the head and the tail with a marker saying how much was dropped', async () => {
    const file = await tmpFile();
    const log = new TaskLog(file, 100, 100);
    await log.open();
    for (let i = 0; i < 1000; i++) log.line(`line ${String(i).padStart(4, '0')}`); // 10 bytes each
    await log.close();
    const text = await fs.readFile(file, 'utf8');
    expect(text.startsWith('line 0000\n')).toBe(true);
    expect(text).toContain('line 0009\n');
    expect(text).not.toContain('line 0010\n');
    expect(text).toMatch(/\[hivemind: 9800 bytes \(980 lines\) of output dropped here/);
    expect(text.trimEnd().endsWith('line 0999')).toBe(true);
    expect(log.droppedBytes).toBe(9800);
    expect(log.droppedLines).toBe(980);
  });

  it('takes two million empty lines with a tail of a million of them, and counts exactly what it dropped', async () => {
    const file = await tmpFile();
    const head = 64 * 1024;
    const tail = 1024 * 1024;
    const n = 2_000_000;
    const log = new TaskLog(file, head, tail);
    await log.open();
    for (let i = 0; i < n; i++) log.line('');
    expect(log.droppedLines).toBe(n - head - tail);
    await log.close();
    const text = await fs.readFile(file, 'utf8');
    expect(text).toBe('\n'.repeat(head) + marker(n - head - tail, n - head - tail) + '\n'.repeat(tail));
  });

  it('keeps whole long lines in the tail, in order, across its storage chunks', async () => {
    const file = await tmpFile();
    const log = new TaskLog(file, 100_000, 300_000);
    await log.open();
    // 1,000 lines of 50,001 bytes: one in the head (two would pass 100,000), five in the tail.
    const line = (i: number) => `${String(i).padStart(6, '0')}${'x'.repeat(49_994)}`;
    for (let i = 0; i < 1000; i++) log.line(line(i));
    await log.close();
    const text = await fs.readFile(file, 'utf8');
    const tailLines = [995, 996, 997, 998, 999].map((i) => `${line(i)}\n`).join('');
    expect(text).toBe(`${line(0)}\n${marker(994 * 50_001, 994)}${tailLines}`);
  });

  it('keeps the last line whole even when it is longer than the tail', async () => {
    const file = await tmpFile();
    const log = new TaskLog(file, 10, 100);
    await log.open();
    log.line('head');
    log.line('a'.repeat(50));
    log.line('b'.repeat(500));
    await log.close();
    expect(await fs.readFile(file, 'utf8')).toBe(`head\n${marker(51, 1)}${'b'.repeat(500)}\n`);
  });

  it('counts bytes, not characters, and does not double a trailing newline', async () => {
    const file = await tmpFile();
    const log = new TaskLog(file, 8, 8);
    await log.open();
    log.line('任务\n'); // 7 bytes: the head
    log.line('é'); // 3 bytes: would pass the head, so the tail starts
    log.line('ab');
    log.line('任务');
    await log.close();
    expect(await fs.readFile(file, 'utf8')).toBe(`任务\n${marker(6, 2)}任务\n`);
  });

  it('writes what the old one-Buffer-per-line log wrote, for lines of any length', async () => {
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n);
    for (const [head, tail] of [[0, 1], [5, 7], [300, 2000], [4096, 70_000], [100_000, 200_000]]) {
      const lines: string[] = [];
      for (let i = 0; i < 3000; i++) {
        const kind = rand(10);
        const len = kind < 4 ? 0 : kind < 8 ? rand(200) : kind < 9 ? rand(5000) : rand(100_000);
        lines.push(`${i}:${'é'.repeat(rand(3))}${'y'.repeat(len)}`);
      }
      const file = await tmpFile();
      const log = new TaskLog(file, head, tail);
      await log.open();
      for (const l of lines) log.line(l);
      await log.close();
      expect(await fs.readFile(file, 'utf8')).toBe(reference(lines, head, tail));
    }
  });
});

describe('LineSplitter', () => {
  it('joins chunks into lines and cuts runaway lines', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 5);
    s.push('ab');
    s.push('c\r\nde');
    s.push('f\n0123456789xy');
    s.flush();
    expect(lines).toEqual(['abc', 'def', '01234', '56789', 'xy']);
  });

  it('cuts a long line even when its newline is in the same chunk', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 4);
    s.push('ab');
    s.push('cdefghij\nk\n');
    s.flush();
    expect(lines).toEqual(['abcd', 'efgh', 'ij', 'k']);
  });

  it('splits a chunk of 64 Ki newlines into as many empty lines, a million times over', () => {
    let count = 0;
    let nonEmpty = 0;
    const s = new LineSplitter((l) => {
      count += 1;
      if (l) nonEmpty += 1;
    });
    const chunk = Buffer.alloc(65536, '\n');
    for (let i = 0; i < 16; i++) s.push(chunk);
    s.push(Buffer.from('\r\n\r\nend'));
    s.flush();
    expect({ count, nonEmpty }).toEqual({ count: 16 * 65536 + 3, nonEmpty: 1 });
  });

  it('stays linear on a long line that comes a byte at a time', () => {
    const lines: number[] = [];
    const s = new LineSplitter((l) => lines.push(l.length), 65536);
    const one = Buffer.from('x');
    for (let i = 0; i < 1_000_000; i++) s.push(one);
    s.flush();
    expect(lines).toEqual([...Array<number>(15).fill(65536), 1_000_000 - 15 * 65536]);
  });

  it('does not split a surrogate pair at the cut', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 4);
    s.push('abc😀d\n');
    s.flush();
    expect(lines).toEqual(['abc', '😀d']);
  });
});

describe('LineSplitter and UTF-8', () => {
  it('keeps a character split across chunks whole', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    const bytes = Buffer.from('naïve → 任务\n');
    for (let i = 0; i < bytes.length; i++) s.push(bytes.subarray(i, i + 1));
    s.flush();
    expect(lines).toEqual(['naïve → 任务']);
  });
});
