import { Metadata, status } from '@grpc/grpc-js';
import { REFUSED_RETRY_FIRST_MS, REFUSED_RETRY_MAX_MS, refusedRetryDelayMs } from '@hivemind/shared/state/refused-results';
import { classifyUploadError, classifyUploadReply, ResultRefusedError, uploadRetryDelayMs } from './upload-failure';

const grpcError = (code: status, details = 'x') => Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata: new Metadata() });

describe('telling a failed result upload that may pass from a refusal', () => {
  it.each([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.INTERNAL, status.RESOURCE_EXHAUSTED, status.UNKNOWN, status.CANCELLED, status.ABORTED, status.UNAUTHENTICATED])(
    'gRPC status %s is transient: retried soon, the slot kept',
    (code) => expect(classifyUploadError(grpcError(code))).toBe('transient'),
  );

  it('the deployed pool\'s expired-token answer (INTERNAL, Exception deserializing request!) is transient', () => {
    expect(classifyUploadError(grpcError(status.INTERNAL, 'Exception deserializing request!'))).toBe('transient');
  });

  it('connection errors and anything without a gRPC status are transient', () => {
    expect(classifyUploadError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe('transient');
    expect(classifyUploadError(new Error('socket hang up'))).toBe('transient');
    expect(classifyUploadError('boom')).toBe('transient');
    expect(classifyUploadError(null)).toBe('transient');
  });

  it.each([status.INVALID_ARGUMENT, status.NOT_FOUND, status.ALREADY_EXISTS, status.PERMISSION_DENIED, status.FAILED_PRECONDITION, status.OUT_OF_RANGE, status.UNIMPLEMENTED])(
    'gRPC status %s is a refusal: the pool answered about the request itself',
    (code) => expect(classifyUploadError(grpcError(code))).toBe('refused'),
  );

  it('a reply with success=false is a refusal; success=true delivers', () => {
    expect(classifyUploadReply({ success: false })).toBe('refused');
    expect(classifyUploadReply({ success: true })).toBe('uploaded');
  });
});

describe('the pace of retries', () => {
  const now = 1_000_000;
  const day = 86_400_000;

  it('after a refusal: minutes, doubling, capped, never past the deadline', () => {
    expect(refusedRetryDelayMs(1, now, now + day)).toBe(REFUSED_RETRY_FIRST_MS);
    expect(refusedRetryDelayMs(2, now, now + day)).toBe(2 * REFUSED_RETRY_FIRST_MS);
    expect(refusedRetryDelayMs(3, now, now + day)).toBe(4 * REFUSED_RETRY_FIRST_MS);
    expect(refusedRetryDelayMs(30, now, now + day)).toBe(REFUSED_RETRY_MAX_MS);
    // The last try lands on the deadline itself.
    expect(refusedRetryDelayMs(1, now, now + 5000)).toBe(5000);
    expect(refusedRetryDelayMs(4, now, now - 1)).toBe(0);
  });

  it('the queue waits a refusal\'s own delay, and its usual backoff otherwise', () => {
    const usual = (n: number) => n * 1000;
    expect(uploadRetryDelayMs(3, new ResultRefusedError('t1', 'unknown task t1', 120_000, now + day), usual)).toBe(120_000);
    expect(uploadRetryDelayMs(3, new Error('UNAVAILABLE: down'), usual)).toBe(3000);
    expect(uploadRetryDelayMs(2, undefined, usual)).toBe(2000);
  });
});
