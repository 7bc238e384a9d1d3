import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { hardwareFingerprint } from '@hivemind/shared/capacity/cpu-benchmark';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { NEVER_OFFERED, ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { apiStatus, waitForReportedStatus } from '../support/node-state';
import { makeZip } from '../support/zips';
import { Stack } from '../support/stack';
import { unzip } from '../support/unzip';
/**
 * The volunteer's earnings: a real task run through devpool, gateway, executor and
 * monitor ends in a result zip whose execution_log.txt holds the node's CPT estimate
 * from the task's measured usage, with every factor of the formula.
 */
describe('earnings and honest capacity', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    stack = await Stack.create('earn', { TASK_USAGE_INTERVAL: '0.5' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  it('writes the estimate and its breakdown, from the usage measured while the task ran', async () => {
    // Busy on one core for 4 s, holding about 40 MB.
    const code = ['import time', 'x = bytearray(40 * 1024 * 1024)', 'end = time.time() + 4', 'n = 0', 'while time.time() < end:', '    n += 1', 'print("spun", n > 0)'].join('\n');
    const zip = await makeZip([{ name: 'run.py', content: code }]);
    expect((await uploadTask(pool, 'earn-1', zip, { cpuScore: 0, memoryGb: 1 })).success).toBe(true);
    const done = await waitForStatus(pool, 'earn-1', ['COMPLETED', 'FAILED']).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.logs()}`);
    });
    expect(done.status).toBe('COMPLETED');
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: 'earn-1', token }));
    const exec = (await unzip(Buffer.from(res.result_zip))).get('execution_log.txt')!.data.toString();
    expect(exec).toContain('Status: Success');
    // A 4 s task earns the floor of 1: the time bonus is 4/3600.
    expect(exec).toContain('estimated CPT: 1 (the Node Pool decides the real credit)');
    const inputs = /inputs: duration ([\d.]+) s, cpu ([\d.]+) %, memory ([\d.]+) %, gpu 0 %/.exec(exec);
    expect(inputs).not.toBeNull();
    const [duration, cpu, memory] = inputs!.slice(1).map(Number);
    expect(duration).toBeGreaterThanOrEqual(4);
    expect(duration).toBeLessThan(30);
    // Measured, not assumed: the loop kept its CPU busy and the bytearray shows in memory (of a 1 GB limit).
    expect(cpu).toBeGreaterThan(10);
    expect(memory).toBeGreaterThan(1);
    expect(exec).toMatch(/usage \(cpu\+memory\)\/2 = [\d.]+ % -> multiplier (0\.8|1|1\.2|1\.5)\n/);
    expect(exec).toMatch(/time bonus min\(duration\/3600, 2\) = 0\.00\d+/);
    expect(exec).toContain('gpu bonus gpu% x 0.01 = 0');
    expect(exec).toMatch(/total max\(1, int\(10 x [\d.]+ x 0\.00\d+ \+ 0\)\) = 1/);
  });

  /** The pool dispatches by the node's registered cpu score: `score` fits, `score + 1` is never offered. */
  async function expectPoolScore(score: number, tag: string): Promise<void> {
    const zip = await makeZip([{ name: 'run.sh', content: 'echo fits' }]);
    expect((await uploadTask(pool, `${tag}-over`, zip, { cpuScore: score + 1 })).success).toBe(true);
    expect((await uploadTask(pool, `${tag}-exact`, zip, { cpuScore: score })).success).toBe(true);
    expect((await waitForStatus(pool, `${tag}-exact`, ['COMPLETED', 'FAILED'], 60_000)).status).toBe('COMPLETED');
    expect(await taskInfo(pool, `${tag}-over`)).toMatchObject({ status: 'PENDING', message: NEVER_OFFERED });
    // Not to be offered later, when the node registers another score.
    await pool.call(pool.master, pool.master.stopTask, (token) => ({ task_id: `${tag}-over`, token }));
  }

  it('registers the cpu score its benchmark measured, cached per hardware and reused on the next start', async () => {
    const cache = JSON.parse(await fs.readFile(path.join(stack.env.WORK_DIR, 'cpu-benchmark.json'), 'utf8'));
    expect(cache.fingerprint).toBe(hardwareFingerprint());
    expect(cache.machineScore).toBeGreaterThan(0);
    const gateway = () => stack.services.filter((s) => s.name === 'gateway').pop()!;
    expect((await apiStatus(stack)).capacity.cpuScore).toBe(cache.machineScore);
    // What the pool heard shows in what it offers: a task asking one point more than the
    // registered score is never offered (it stays PENDING with no message); one asking
    // exactly the score runs.
    await expectPoolScore(cache.machineScore, 'bench');

    // A planted score shows the next start reads the cache instead of measuring again.
    await fs.writeFile(path.join(stack.env.WORK_DIR, 'cpu-benchmark.json'), JSON.stringify({ ...cache, machineScore: 4321 }));
    await stack.stop(gateway());
    await stack.start('gateway');
    expect((await apiStatus(stack)).capacity.cpuScore).toBe(4321);
    await waitForReportedStatus(stack, 'Idle', 40_000);
    await expectPoolScore(4321, 'cache');
  });
});
