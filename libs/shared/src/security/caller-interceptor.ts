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
  unimplementedPaths: string[] = [],
): ServerInterceptor {
  const guarded = new Set(guardedPaths);
  const unimplemented = new Set(unimplementedPaths);
  return (method, call) => {
    // Methods this server does not serve are refused before their body is read too, or
    // anyone could make it take in a 1 GiB message just to answer UNIMPLEMENTED.
    if (unimplemented.has(method.path)) {
      return new ServerInterceptingCall(call, {
        start: (next) =>
          next({ onReceiveMetadata: () => call.sendStatus({ code: status.UNIMPLEMENTED, details: 'this method is served by the Node Pool, not by a worker' }) }),
      });
    }
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
