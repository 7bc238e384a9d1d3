import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { unzip } from '../../../../test/support/unzip';
import { estimateCpt } from '../earnings/cpt-estimate';
import { ExecutionRecord, formatExecutionLog, writeResultZip } from './result-zip';

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
});
