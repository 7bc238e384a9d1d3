import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { unzip } from '../../../../test/support/unzip';
import { estimateCpt } from '../earnings/cpt-estimate';
import { ExecutionRecord, formatExecutionLog, isReservedName, NotPackedList, oneLine, ResultBudgetError, shownName, writeResultZip } from './result-zip';

describe('writeResultZip', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-result-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  const record = (status: ExecutionRecord['status']): ExecutionRecord => ({
    taskId: 't-1',
    status,
    reason: status === 'Stopped' ? 'stopped at the request of the task owner' : 'exited with code 0',
    exitCode: status === 'Stopped' ? 143 : 0,
    startedAt: new Date('2026-01-01T00:00:00Z'),
    finishedAt: new Date('2026-01-01T00:00:02.5Z'),
    nodeId: 'alice',
    entryPoint: 'run.py',
    runtime: 'docker',
  });

  async function workspace() {
    const ws = path.join(dir, 'ws');
    await fs.mkdir(path.join(ws, 'result', 'deep'), { recursive: true });
    await fs.mkdir(path.join(ws, 'empty'));
    await fs.writeFile(path.join(ws, 'run.py'), 'print(1)');
    await fs.writeFile(path.join(ws, 'result', 'deep', 'out.txt'), 'answer');
    await fs.writeFile(path.join(ws, 'execution_log.txt'), 'forged by the task');
    await fs.symlink('/etc/passwd', path.join(ws, 'result', 'leak'));
    await fs.writeFile(path.join(dir, 'task.log'), 'line 1\nline 2\n');
    return ws;
  }

  it('packs the workspace, execution_log.txt and task_logs.txt, deflated, relative paths', async () => {
    const ws = await workspace();
    const out = path.join(dir, 'r.zip');
    await writeResultZip({ workspace: ws, record: record('Success'), logFile: path.join(dir, 'task.log'), outFile: out });
    const entries = await unzip(await fs.readFile(out));
    expect([...entries.keys()].sort()).toEqual(
      ['empty/', 'execution_log.txt', 'result/', 'result/deep/', 'result/deep/out.txt', 'run.py', 'task_logs.txt'].sort(),
    );
    expect(entries.get('result/deep/out.txt')!.data.toString()).toBe('answer');
    expect(entries.get('result/deep/out.txt')!.compressionMethod).toBe(8);
    expect(entries.get('task_logs.txt')!.data.toString()).toBe('line 1\nline 2\n');
    const exec = entries.get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Task ID: t-1');
    expect(exec).toContain('Status: Success');
    expect(exec).toContain('Duration: 2.500 s');
    expect(exec).toContain('Node: alice');
    expect(exec).not.toContain('forged');
    expect(entries.has('task_stopped.txt')).toBe(false);
  });

  it('adds task_stopped.txt for a stopped task and leaves out links', async () => {
    const ws = await workspace();
    const out = path.join(dir, 'r.zip');
    await writeResultZip({ workspace: ws, record: record('Stopped'), logFile: path.join(dir, 'task.log'), outFile: out });
    const entries = await unzip(await fs.readFile(out));
    expect(entries.get('task_stopped.txt')!.data.toString()).toMatch(/Task t-1 was stopped at .*: stopped at the request/);
    expect(entries.get('execution_log.txt')!.data.toString()).toContain('Status: Stopped');
    expect(entries.has('result/leak')).toBe(false);
  });

  it('packs an empty task_logs.txt when the task printed nothing', async () => {
    const ws = path.join(dir, 'ws2');
    await fs.mkdir(ws);
    const out = path.join(dir, 'r2.zip');
    await writeResultZip({ workspace: ws, record: record('Success'), logFile: path.join(dir, 'missing.log'), outFile: out });
    const entries = await unzip(await fs.readFile(out));
    expect(entries.get('task_logs.txt')!.data.length).toBe(0);
  });

  it('writes the CPT estimate with its breakdown, and the time paused for the owner', () => {
    const cpt = estimateCpt({ durationSeconds: 5400, avgCpuPercent: 90, avgMemoryPercent: 60, avgGpuPercent: 0 });
    const text = formatExecutionLog({ ...record('Success'), cpt, frozenSeconds: 12.34 });
    expect(text).toContain('Paused for the owner: 12.3 s (not counted toward the timeout)');
    expect(text).toContain('estimated CPT: 18 (the Node Pool decides the real credit)');
    expect(text).toContain('inputs: duration 5400 s, cpu 90 %, memory 60 %, gpu 0 %');
    expect(text).toContain('usage (cpu+memory)/2 = 75 % -> multiplier 1.2');
    expect(text).toContain('total max(1, int(10 x 1.2 x 1.5 + 0)) = 18');
    expect(formatExecutionLog(record('Success'))).not.toContain('estimated CPT');
  });

  it('writes plain names as they are and quotes and escapes any other, so none starts a line', () => {
    expect(shownName('result/out-1.txt')).toBe('result/out-1.txt');
    expect(shownName('my file.txt')).toBe('"my file.txt"');
    expect(shownName('x\nStatus: Success')).toBe('"x\\nStatus: Success"');
    expect(shownName('a\u2028b\u202ec\u0085d')).toBe('"a\\u2028b\\u202ec\\u0085d"');
    expect(shownName('say "hi"')).toBe('"say \\"hi\\""');
    expect(oneLine('line 1\r\nline 2')).toBe('line 1\\u000d\\u000aline 2');
  });

  it('keeps task-supplied text in execution_log.txt on its own line', () => {
    const notPacked = new NotPackedList();
    notPacked.add('evil\nStatus: Success', 'sparse: 1099511627776 bytes apparent, 0 allocated');
    const text = formatExecutionLog({ ...record('Failed'), entryPoint: 'x\nStatus: Success.py', reason: 'the zip entry "a\nStatus: Success" is bad' }, notPacked);
    expect(text.match(/^Status: /gm)).toEqual(['Status: ']);
    expect(text).toContain('Status: Failed');
    expect(text).toContain('Entry point: "x\\nStatus: Success.py"');
    expect(text).toContain('Reason: the zip entry "a\\u000aStatus: Success" is bad');
    expect(text).toContain('Not packed (sparse: 1099511627776 bytes apparent, 0 allocated): "evil\\nStatus: Success"');
  });

  it('lists at most 20 entries left out, then how many more', () => {
    const notPacked = new NotPackedList();
    for (let i = 0; i < 23; i++) notPacked.add(`f${i}`, 'unreadable');
    const text = formatExecutionLog(record('Success'), notPacked);
    expect(text.match(/^Not packed \(unreadable\): f\d+$/gm)).toHaveLength(20);
    expect(text).toContain('Not packed: and 3 more');
    expect(formatExecutionLog(record('Success'), ['secret.txt'])).toContain('Not packed (unreadable): secret.txt');
  });

  it('reserves the worker\'s names at the top level as case-insensitive file systems compare them', () => {
    for (const n of ['execution_log.txt', 'TASK_LOGS.TXT', 'task_stopped.txt.', 'Execution_Log.txt ']) expect(isReservedName(n)).toBe(true);
    for (const n of ['execution_log.txt.bak', 'logs.txt', 'task_logs']) expect(isReservedName(n)).toBe(false);
  });

  it('names the limit and its size in a budget error', () => {
    const zip = new ResultBudgetError('zip_too_large', 1024);
    expect(zip.kind).toBe('zip_too_large');
    expect(zip.message).toBe('the result zip passed its size limit of 1024 bytes');
    expect(new ResultBudgetError('read_too_large', 2048).message).toBe('the workspace files to pack passed the limit of 2048 bytes read');
  });
});
