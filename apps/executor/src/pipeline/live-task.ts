import { TaskUsageAverage } from '@hivemind/shared/earnings/task-usage';
import { Outcome } from '@hivemind/shared/task-format/outcome';
import { RunningTaskHandle } from '../runtime/task-runtime.port';
import { TaskCancelled } from './cancellation';

/**
 * One task while this executor holds it: its cancellation, its running container
 * and what was measured of it. The task's steps read `signal`; a stop, the timeout,
 * a watchdog or the drain call `cancel` with the outcome the task ends with. The first
 * cancellation wins.
 *
 * Once the task's run is over, `finishing()` gives the steps after it (packing the
 * result) a fresh signal: a task that was stopped still gets its result packed, and a
 * stop or drain that comes during packing cuts packing short.
 */
export class LiveTask {
  private controller = new AbortController();
  /** The outcome the task's run was cancelled with, if it was. */
  private runCancelled: Outcome | null = null;
  handle: RunningTaskHandle | null = null;
  /** Measured usage while the task ran (for its CPT estimate); null until it starts. */
  usage: TaskUsageAverage | null = null;
  /** How long the task's process ran, in ms, once it ended (time paused for the owner left out). */
  ranMs = 0;
  /** How long it was paused for the owner, in ms. */
  frozenMs = 0;
  /** GPUs allocated to the task. */
  gpus: string[] = [];

  constructor(
    readonly taskId: string,
    readonly startedAt = new Date(),
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Ends the task's current step with `outcome` (ignored once a cancellation is under way). */
  cancel(outcome: Outcome): boolean {
    if (this.controller.signal.aborted) return false;
    this.controller.abort(new TaskCancelled(outcome));
    return true;
  }

  /** The outcome the task was cancelled with before its run ended; null if it was not. */
  get cancelledWith(): Outcome | null {
    if (this.runCancelled) return this.runCancelled;
    const r: unknown = this.controller.signal.reason;
    return this.controller.signal.aborted && r instanceof TaskCancelled ? r.outcome : null;
  }

  /** Moves on to the steps after the run: a new signal, the run's cancellation remembered. */
  finishing(): void {
    this.runCancelled = this.cancelledWith;
    this.controller = new AbortController();
  }
}
