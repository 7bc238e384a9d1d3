import { Outcome } from '@hivemind/shared/task-format/outcome';

/**
 * Why a task's steps must end now: a stop from the pool, the task's timeout, the
 * node's drain, or a step that ran out of its budget. Carried as the reason of the
 * task's AbortSignal; a step that sees its signal aborted cleans up what it started
 * and throws `signal.reason`, and the pipeline ends the task with its outcome.
 */
export class TaskCancelled extends Error {
  constructor(readonly outcome: Outcome) {
    super(outcome.reason);
    this.name = 'TaskCancelled';
  }
}

/** Throws the signal's reason (a TaskCancelled) if it was aborted. */
export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
}

/** Resolves when the signal aborts (never, if it does not); the returned function stops listening. */
export function onCancel(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => undefined;
  }
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

/**
 * A signal that aborts with `outcome` after `ms`, or when `parent` aborts (with the
 * parent's reason): one step's time budget inside the task's cancellation.
 */
export function withBudget(parent: AbortSignal, ms: number, outcome: () => Outcome): { signal: AbortSignal; done: () => void } {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new TaskCancelled(outcome())), ms);
  const off = onCancel(parent, () => ctl.abort(parent.reason));
  return {
    signal: ctl.signal,
    done: () => {
      clearTimeout(timer);
      off();
    },
  };
}
