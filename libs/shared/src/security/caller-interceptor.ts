import { Metadata, ServerInterceptingCall, ServerInterceptor, status } from '@grpc/grpc-js';
import { CallerVerdict } from './caller-guard';

/**
 * A grpc-js server interceptor that checks the caller of the listed methods as soon
 * as its metadata arrives, before the request body (up to 1 GiB) is read, and ends a
 * refused call with PERMISSION_DENIED.
 */
export function callerInterceptor(
  guardedPaths: string[],
  check: (method: string, peer: string, metadata: Metadata) => CallerVerdict,
  refusalSuffix = '',
): ServerInterceptor {
  const guarded = new Set(guardedPaths);
  return (method, call) => {
    if (!guarded.has(method.path)) return new ServerInterceptingCall(call);
    const name = method.path.slice(method.path.lastIndexOf('/') + 1);
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const verdict = check(name, call.getPeer(), metadata);
            if (verdict.ok) mdNext(metadata);
            else call.sendStatus({ code: status.PERMISSION_DENIED, details: `${verdict.message}${refusalSuffix}` });
          },
        }),
    });
  };
}
