import {
  CallOptions,
  ChannelCredentials,
  ClientUnaryCall,
  credentials,
  Metadata,
  ServiceError,
  status,
} from '@grpc/grpc-js';

/** Channel/server options that let messages up to `maxBytes` through both ways. */
export function messageSizeOptions(maxBytes: number): Record<string, number> {
  return { 'grpc.max_receive_message_length': maxBytes, 'grpc.max_send_message_length': maxBytes };
}

export type UnaryFn<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/** Calls a generated client's unary method as a promise, with a deadline. */
export function unary<Req, Res>(client: object, fn: UnaryFn<Req, Res>, request: Req, metadata = new Metadata(), deadlineMs = 30000): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn.call(client, request, metadata, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

/**
 * The deployed pool rejects a missing, malformed or expired token with INTERNAL and
 * "Exception deserializing request!"; treat that and UNAUTHENTICATED alike.
 */
export function isAuthError(err: unknown): boolean {
  const e = err as Partial<ServiceError>;
  return e?.code === status.UNAUTHENTICATED || (e?.code === status.INTERNAL && /Exception deserializing request/.test(e.details ?? ''));
}

export function grpcErrorText(err: unknown): string {
  const e = err as Partial<ServiceError>;
  if (e && typeof e.code === 'number') return `${status[e.code] ?? e.code}: ${e.details ?? e.message}`;
  return (err as Error)?.message ?? String(err);
}

export function insecure(): ChannelCredentials {
  return credentials.createInsecure();
}
