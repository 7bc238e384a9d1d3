import { status } from '@grpc/grpc-js';

/**
 * How a failed TaskResultUpload is treated:
 * - `transient`: the pool could not answer (down, overloaded, too slow, a broken
 *   connection, a token to renew): retried soon, the task keeping its slot;
 * - `refused`: the pool answered and will not take the result (a reply with
 *   success=false, e.g. a pool that forgot the task; or a status saying the request
 *   itself is wrong): retrying soon gets the same answer, so the slot is freed and the
 *   result retried slowly for RESULT_REFUSED_RETRY.
 */
export type UploadFailureKind = 'transient' | 'refused';

/** gRPC statuses of a call the pool did not, or could not, answer. */
const TRANSIENT_CODES = new Set<number>([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.INTERNAL,
  status.RESOURCE_EXHAUSTED,
  status.UNKNOWN,
  status.CANCELLED,
  status.ABORTED,
  status.UNAUTHENTICATED,
]);

/** The kind of an error thrown by the TaskResultUpload call. */
export function classifyUploadError(err: unknown): UploadFailureKind {
  const code = (err as { code?: unknown } | null)?.code;
  // Not a gRPC status (ECONNRESET, a local error): nothing the pool said.
  if (typeof code !== 'number') return 'transient';
  return TRANSIENT_CODES.has(code) ? 'transient' : 'refused';
}

/** The kind of a TaskResultUpload reply: only success=true delivers the result. */
export function classifyUploadReply(res: { success: boolean }): UploadFailureKind | 'uploaded' {
  return res.success ? 'uploaded' : 'refused';
}

/**
 * Thrown by an upload the pool refused while time remains to retry it: the queue's
 * backoff waits `retryInMs` (slow) instead of its usual short pause.
 */
export class ResultRefusedError extends Error {
  constructor(
    readonly taskId: string,
    readonly poolMessage: string,
    readonly retryInMs: number,
    readonly until: number,
  ) {
    super(`the pool refused the result of ${taskId} (${poolMessage}); its slot is free, retrying every few minutes until ${new Date(until).toISOString()}`);
    this.name = 'ResultRefusedError';
  }
}

/** The delay the results queue waits before the next try of a failed upload. */
export function uploadRetryDelayMs(attemptsMade: number, err: unknown, usual: (attempt: number) => number): number {
  return err instanceof ResultRefusedError ? err.retryInMs : usual(attemptsMade);
}
