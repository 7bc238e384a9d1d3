import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LineSplitter, TaskLog } from './task-log';

describe('TaskLog', () => {
  it('keeps everything while under the head size', async () => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'hm-log-')), 'l');
    const log = new TaskLog(file, 1024, 1024);
    await log.open();
    for (let i = 0; i < 10; i++) log.line(`line ${i}`);
    await log.close();
    expect((await fs.readFile(file, 'utf8')).split('\n').filter(Boolean)).toHaveLength(10);
  });

  it('keeps the head and the tail with a marker saying how much was dropped', async () => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'hm-log-')), 'l');
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
