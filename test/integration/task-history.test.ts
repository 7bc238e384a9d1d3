import pino from 'pino';
import { loadWorkerConfig } from '@hivemind/shared/config/worker-config';
import { estimateCpt } from '@hivemind/shared/earnings/cpt-estimate';
import { connectNodeState, NodeStateConnection } from '@hivemind/shared/state/node-state';
import { RunningTask } from '@hivemind/shared/state/running-tasks';
import { TaskHistoryService } from '../../apps/gateway/src/results/task-history.service';
import { makeZip } from '../support/zips';
import { redisUrl, uniquePrefix } from '../support/stack';

describe('task history in Redis', () => {
  let state: NodeStateConnection;
  let history: TaskHistoryService;

  beforeEach(() => {
    const prefix = uniquePrefix('history');
    state = connectNodeState(redisUrl(), prefix, 'test-history');
    const config = loadWorkerConfig({ REDIS_PREFIX: prefix, TASK_HISTORY_SIZE: '3', TASK_HISTORY_LOG_KB: '1' });
    history = new TaskHistoryService(config, pino({ level: 'silent' }), state.running, state.history);
  });
  afterEach(() => state.close());

  const running = (t: Partial<RunningTask>): RunningTask => ({ executorId: 'e1', startedAt: 1000, cpuPercent: 0, memoryPercent: 0, memoryBytes: 0, usageAt: 1000, ...t });
  const job = (taskId: string, seconds: number) => ({
    taskId,
    status: 'Success' as const,
    reason: 'exited with code 0',
    exitCode: 0,
    receivedAt: 500,
    startedAt: 1000,
    finishedAt: 1000 + seconds * 1000,
  });

  it('averages each usage sample once and records the CPT estimate from the averages', async () => {
    await state.running.start('t1', running({})); // the first entry, before any sample: ignored
    await history.sampleUsage();
    await state.running.start('t1', running({ cpuPercent: 90, memoryPercent: 80, usageAt: 2000 }));
    await history.sampleUsage();
    await history.sampleUsage(); // the same sample again: not counted twice
    await state.running.start('t1', running({ cpuPercent: 70, memoryPercent: 60, usageAt: 3000 }));
    await history.sampleUsage();
    expect(await history.averages('t1')).toEqual({ cpu: 80, memory: 70, samples: 2 });

    await state.running.remove('t1');
    const logs = 'x'.repeat(3000) + '\nthe last line\n';
    const zip = await makeZip([{ name: 'execution_log.txt', content: 'Status: Success' }, { name: 'task_logs.txt', content: logs }]);
    const entry = await history.record(job('t1', 7200), zip);
    // (80 + 70) / 2 = 75 % -> multiplier 1.2; two hours -> time bonus 2: 10 x 1.2 x 2 = 24.
    expect(entry.cpt).toEqual(estimateCpt({ durationSeconds: 7200, avgCpuPercent: 80, avgMemoryPercent: 70, avgGpuPercent: 0 }));
    expect(entry.cpt.total).toBe(24);
    expect(entry).toMatchObject({ taskId: 't1', status: 'Success', durationSeconds: 7200, queueWaitSeconds: 0.5, resultBytes: zip.length, usageSamples: 2 });
    expect(entry.logsTail).toHaveLength(1024);
    expect(entry.logsTail.endsWith('the last line\n')).toBe(true);
    // The task's usage sums went with the entry.
    expect(await state.history.averages('t1')).toEqual({ cpu: 0, memory: 0, samples: 0 });
    expect(await history.get('t1')).toEqual(entry);
  });

  it('keeps the newest TASK_HISTORY_SIZE entries and sums their estimates', async () => {
    const zip = await makeZip([{ name: 'task_logs.txt', content: 'hi' }]);
    for (const id of ['a', 'b', 'c', 'd']) await history.record(job(id, 60), zip);
    expect((await history.list()).map((e) => e.taskId)).toEqual(['d', 'c', 'b']);
    // No samples: usage 0 % -> multiplier 0.8; a minute -> 10 x 0.8 x 1/60 = 0.13 -> at least 1.
    expect(await history.estimatedTotal()).toEqual({ total: 3, tasks: 3 });
  });
});
