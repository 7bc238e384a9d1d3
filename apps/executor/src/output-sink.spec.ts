import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OutputAppender } from '@hivemind/shared/state/output-stream';
import { TaskLog } from '@hivemind/shared/task-format/task-log';
import { cutUtf8, MAX_BATCH_BYTES, OutputSink } from './output-sink';

/** An output stream that keeps what it was given. */
function fakeStream() {
  const entries: { taskId: string; text: string }[] = [];
  const out: OutputAppender = {
    append: (taskId, text) => {
      entries.push({ taskId, text });
      return Promise.resolve();
    },
  };
  return { out, entries };
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

async function sinkWith(headBytes = 64 * 1024, tailBytes = 64 * 1024) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-sink-'));
  dirs.push(dir);
  const log = new TaskLog(path.join(dir, 'task.log'), headBytes, tailBytes);
  await log.open();
  const { out, entries } = fakeStream();
  // A long interval: the test flushes by hand.
  const sink = new OutputSink(out, 'task-1', log, 60_000);
  return { sink, log, entries, file: log.file };
}

/** Runs of one character as `c{n}`, so that a failure shows a readable difference. */
const squash = (s: string) => s.replace(/(.)\1{9,}/gsu, (run: string, c: string) => `${c === '\n' ? '\\n' : c}{${[...run].length}}`);
const skippedMarker = (n: number) => `[hivemind: ${n} characters of output skipped in the live view; the result's task_logs.txt keeps its head and tail]`;
const cutMarker = (n: number) => ` [hivemind: ${n} characters of this line cut in the live view]`;
const dropMarker = (bytes: number, lines: number) =>
  `\n[hivemind: ${bytes} bytes (${lines} lines) of output dropped here; the head and the tail are kept]\n\n`;

describe('OutputSink', () => {
  it('sends new lines in one entry per flush, with notes, and nothing when nothing is new', async () => {
    const { sink, entries, file } = await sinkWith();
    sink.push(Buffer.from('one\ntwo\nthr'));
    sink.note('GPUs: none');
    await sink.flush();
    await sink.flush();
    sink.push(Buffer.from('ee\n'));
    await sink.close();
    expect(entries).toEqual([
      { taskId: 'task-1', text: 'one\ntwo\n[hivemind] GPUs: none' },
      { taskId: 'task-1', text: 'three' },
    ]);
    expect(await fs.readFile(file, 'utf8')).toBe('one\ntwo\n[hivemind] GPUs: none\nthree\n');
  });

  it('takes a million empty lines: one bounded entry saying how many it skipped, and a bounded log with exact counts', async () => {
    const { sink, log, entries, file } = await sinkWith(64 * 1024, 64 * 1024);
    const chunk = Buffer.alloc(65536, '\n');
    for (let i = 0; i < 16; i++) sink.push(chunk);
    const lines = 16 * 65536;
    await sink.close();
    expect(entries).toHaveLength(1);
    const { text } = entries[0];
    const kept = text.split('\n').length - 1;
    expect(squash(text)).toBe(squash(`${skippedMarker(lines - kept)}${'\n'.repeat(kept)}`));
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    expect(kept).toBe(MAX_BATCH_BYTES - 160);
    const dropped = lines - 2 * 65536;
    expect({ bytes: log.droppedBytes, lines: log.droppedLines }).toEqual({ bytes: dropped, lines: dropped });
    expect(squash(await fs.readFile(file, 'utf8'))).toBe(squash(`${'\n'.repeat(65536)}${dropMarker(dropped, dropped)}${'\n'.repeat(65536)}`));
  });

  it('keeps the newest lines in order while its ring grows from a wrapped start', async () => {
    const { sink, entries } = await sinkWith();
    // Long lines first: the oldest are skipped while the ring is small, so it wraps; then
    // many short ones make it grow (twice over) with its first line in the middle.
    const lines = [
      ...Array.from({ length: 300 }, (_, i) => `long ${i} ${'x'.repeat(90)}`),
      ...Array.from({ length: 500 }, (_, i) => `s${i}`),
    ];
    for (let i = 0; i < lines.length; i += 7) sink.push(Buffer.from(lines.slice(i, i + 7).map((l) => `${l}\n`).join('')));
    await sink.close();
    // The model: the longest run of newest lines within the entry's budget for lines.
    let bytes = 0;
    let from = lines.length;
    while (from > 0 && bytes + lines[from - 1].length + 1 <= MAX_BATCH_BYTES - 160) bytes += lines[--from].length + 1;
    const skipped = lines.slice(0, from).reduce((a, l) => a + l.length + 1, 0);
    expect(entries).toEqual([{ taskId: 'task-1', text: [skippedMarker(skipped), ...lines.slice(from)].join('\n') }]);
  });

  it('cuts long lines to fit an entry and says how many characters it cut', async () => {
    const { sink, entries, file } = await sinkWith(1024 * 1024, 1024 * 1024);
    // A megabyte without a newline: the line splitter cuts it into 64 KiB lines (the
    // last one waits for more text: it might still end there).
    sink.push(Buffer.alloc(1024 * 1024, 'x'));
    await sink.flush();
    // Then lines of 30,000 characters with newlines.
    const long = `${'y'.repeat(29_999)}z\n`;
    sink.push(Buffer.from(long));
    await sink.flush();
    sink.push(Buffer.from(long + long));
    await sink.close();
    const texts = entries.map((e) => e.text);
    for (const t of texts) expect(Buffer.byteLength(t)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    const kept = MAX_BATCH_BYTES - 160 - 1 - 100; // what a cut line keeps of an ASCII line
    const xCut = `${'x'.repeat(kept)}${cutMarker(65536 - kept)}`;
    const yCut = `${'y'.repeat(kept)}${cutMarker(30_000 - kept)}`;
    // Each flush shows the newest line (cut) and says how much came before it.
    expect(texts.map(squash)).toEqual([
      `${skippedMarker(14 * 65537)}\n${xCut}`,
      `${skippedMarker(65537)}\n${yCut}`,
      `${skippedMarker(30_001)}\n${yCut}`,
    ].map(squash));
    // task_logs.txt has every character.
    const logText = await fs.readFile(file, 'utf8');
    expect(squash(logText)).toBe(squash(`${'x'.repeat(65536)}\n`.repeat(16) + long + long + long));
  });

  it('measures the entry bound in bytes, and never splits a character', async () => {
    const { sink, entries } = await sinkWith();
    sink.push(Buffer.from(`${'任'.repeat(20_000)}\n`));
    sink.push(Buffer.from(`${'😀'.repeat(20_000)}\n`));
    await sink.close();
    expect(entries).toHaveLength(1);
    const text = entries[0].text;
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    expect(text).not.toContain('\ufffd');
    expect(text).toMatch(/^\[hivemind: 20001 characters of output skipped in the live view; the result's task_logs.txt keeps its head and tail\]\n(😀)+ \[hivemind: \d+ characters of this line cut in the live view\]$/u);
  });

  it('keeps the entries of a long flood of long lines under MAX_BATCH_BYTES, so the stream stays under MAXLEN × MAX_BATCH_BYTES', async () => {
    const { sink, entries } = await sinkWith();
    const chunk = Buffer.from(`${'w'.repeat(99_999)}\n${'v'.repeat(5000)}\n`.repeat(10));
    for (let i = 0; i < 100; i++) {
      sink.push(chunk);
      await sink.flush();
    }
    await sink.close();
    expect(entries).toHaveLength(100);
    expect(Math.max(...entries.map((e) => Buffer.byteLength(e.text)))).toBeLessThanOrEqual(MAX_BATCH_BYTES);
  });
});

describe('cutUtf8', () => {
  it('keeps the longest prefix that fits, in whole characters', () => {
    expect(cutUtf8('abcdef', 4)).toBe('abcd');
    expect(cutUtf8('abc', 10)).toBe('abc');
    expect(cutUtf8('a任务', 5)).toBe('a任');
    expect(cutUtf8('a任务', 6)).toBe('a任');
    expect(cutUtf8('a任务', 7)).toBe('a任务');
    expect(cutUtf8('😀😀', 5)).toBe('😀');
    expect(cutUtf8('😀😀', 3)).toBe('');
    expect(cutUtf8('ab😀', 3)).toBe('ab');
  });
});
