import { NodeEvent, parseNodeEvent } from '@hivemind/shared/events/node-events';
import type { NodeEvents } from '@hivemind/shared/events/node-events.emitter';
import type { ResultJob } from '@hivemind/shared/queue/queues';
import { TaskEvents } from './task-events';

describe('TaskEvents', () => {
  function events() {
    const sent: { event: NodeEvent; data: Record<string, unknown> }[] = [];
    const emitter = { emit: (event: NodeEvent, data: Record<string, unknown>) => void sent.push({ event, data }) } as unknown as NodeEvents;
    return { task: new TaskEvents(emitter), sent };
  }
  const result = (status: ResultJob['status'], code: ResultJob['code']): ResultJob => ({
    taskId: 't-1', status, code, reason: 'why', exitCode: status === 'Success' ? 0 : null, receivedAt: 1, startedAt: 2, finishedAt: 3,
    cpt: { total: 1, durationSeconds: 1, avgCpuPercent: 1, avgMemoryPercent: 1, avgGpuPercent: 0, pausedSeconds: 0 },
  });

  it('tells a stop from a finish, with payloads the gateway accepts', () => {
    const { task, sent } = events();
    task.started('t-1', 'exec-1', 2);
    task.ended(result('Success', 'succeeded'));
    task.ended(result('Failed', 'timed_out'));
    task.ended(result('Stopped', 'stopped'));
    expect(sent.map((s) => [s.event, s.data.status])).toEqual([
      [NodeEvent.TaskStarted, undefined],
      [NodeEvent.TaskFinished, 'Success'],
      [NodeEvent.TaskFinished, 'Failed'],
      [NodeEvent.TaskStopped, 'Stopped'],
    ]);
    for (const s of sent) expect(parseNodeEvent(s.event, { ...s.data, node: 'n' }).ok).toBe(true);
  });
});
