import { Injectable } from '@nestjs/common';
import { NodeEvent } from '@hivemind/shared/events/node-events';
import { NodeEvents } from '@hivemind/shared/events/node-events.emitter';
import type { ResultJob } from '@hivemind/shared/queue/queues';

/**
 * A task's transitions as events (the dashboard's running and finished rows): started
 * when its container runs, finished or stopped once its result is recorded and queued.
 * Fire and forget (NodeEvents): never delays or fails the task.
 */
@Injectable()
export class TaskEvents {
  constructor(private readonly events: NodeEvents) {}

  started(taskId: string, executorId: string, startedAt: number): void {
    this.events.emit(NodeEvent.TaskStarted, { taskId, executorId, startedAt });
  }

  /** The result the executor queued for upload. */
  ended(result: ResultJob): void {
    const { taskId, code, reason, exitCode, startedAt, finishedAt } = result;
    const ended = { taskId, code, reason, exitCode, startedAt, finishedAt };
    if (result.status === 'Stopped') this.events.emit(NodeEvent.TaskStopped, { ...ended, status: 'Stopped' });
    else this.events.emit(NodeEvent.TaskFinished, { ...ended, status: result.status });
  }
}
