import type { TaskOutcome } from './result-zip';

/**
 * Why a task ended, as a code a program can match on. The sentence a volunteer and the
 * task's owner read (execution_log.txt, the pool, the dashboard) is derived from it.
 */
export const OUTCOME_CODES = [
  'succeeded',
  'exited_with_error',
  'timed_out',
  'stopped',
  'out_of_memory',
  'quota_exceeded',
  'result_too_large',
  'result_unpackable',
  'install_refused',
  'install_failed',
  'step_over_budget',
  'gpu_unavailable',
  'invalid_task',
  'runtime_failed',
  'executor_failed',
  'lost',
] as const;
export type OutcomeCode = (typeof OUTCOME_CODES)[number];

/** How a task ended: the code, the status the pool sees, and the sentence people read. */
export interface Outcome {
  code: OutcomeCode;
  status: TaskOutcome;
  reason: string;
}

const STATUS: Record<OutcomeCode, TaskOutcome> = {
  succeeded: 'Success',
  exited_with_error: 'Failed',
  timed_out: 'Failed',
  stopped: 'Stopped',
  out_of_memory: 'Failed',
  quota_exceeded: 'Failed',
  result_too_large: 'Failed',
  result_unpackable: 'Failed',
  install_refused: 'Failed',
  install_failed: 'Failed',
  step_over_budget: 'Failed',
  gpu_unavailable: 'Failed',
  invalid_task: 'Failed',
  runtime_failed: 'Failed',
  executor_failed: 'Failed',
  lost: 'Failed',
};

function make(code: OutcomeCode, reason: string): Outcome {
  return { code, status: STATUS[code], reason };
}

const mb = (bytes: number) => `${Math.round(bytes / 1048576)} MB`;

/** Every outcome, built from its facts; the only place their sentences are written. */
export const outcomes = {
  succeeded: () => make('succeeded', 'exited with code 0'),
  exitedWithError: (exitCode: number | null) => make('exited_with_error', `exited with code ${exitCode === null ? 'none' : exitCode}`),
  timedOut: (limitSec: number, setting?: string) => make('timed_out', `timed out after ${limitSec} s${setting ? ` (${setting})` : ''}`),
  stopped: (why: string, when?: 'before it started' | 'while its requirements were installed' | 'while its result was packed') =>
    make('stopped', when ? `${why} ${when}` : why),
  outOfMemory: (limitBytes: number) => make('out_of_memory', `out of memory: the task passed its limit of ${mb(limitBytes)} and was killed`),
  quotaExceeded: (limitBytes: number, how: 'stopped' | 'writes failed' | 'found at its end') =>
    make(
      'quota_exceeded',
      how === 'writes failed'
        ? `workspace quota exceeded: the task filled its ${mb(limitBytes)} workspace quota (WORKSPACE_QUOTA_MB); writes past it failed`
        : `workspace quota exceeded: the task wrote more than its ${mb(limitBytes)} workspace quota (WORKSPACE_QUOTA_MB)${how === 'stopped' ? ' and was stopped' : ''}`,
    ),
  resultTooLarge: (detail: string) => make('result_too_large', detail),
  resultUnpackable: (detail: string) => make('result_unpackable', `the workspace could not be packed: ${detail}`),
  installRefused: (detail: string) => make('install_refused', `requirements.txt refused: ${detail}`),
  installFailed: (detail: string) => make('install_failed', `installing requirements.txt failed: ${detail}`),
  stepOverBudget: (step: string, detail: string) => make('step_over_budget', `the ${step} step ran out of its budget: ${detail}`),
  gpuUnavailable: (detail: string) => make('gpu_unavailable', detail),
  invalidTask: (detail: string) => make('invalid_task', detail),
  runtimeFailed: (detail: string) => make('runtime_failed', detail),
  executorFailed: (detail: string) => make('executor_failed', `the executor could not run the task: ${detail}`),
  lost: (detail: string) => make('lost', detail),
};

/** A result that keeps its code but says more (e.g. why the workspace was left out). */
export function withNote(o: Outcome, note: string, status: TaskOutcome = o.status): Outcome {
  return { ...o, status, reason: `${o.reason}; ${note}` };
}
