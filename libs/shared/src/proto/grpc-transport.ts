import type { ChannelOptions, ServerCredentials, ServerInterceptor, ServiceDefinition } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/grpc-js/build/src/make-client';
import { ServerGrpc } from '@nestjs/microservices';
import { messageSizeOptions } from './grpc';

export interface GrpcTransportOptions {
  /** host:port to bind. */
  url: string;
  /** The services, with their full names (`nodepool.WorkerNodeService`): see {@link servicePackage}. */
  packageDefinition: PackageDefinition;
  /** The proto package Nest looks the services up in (`nodepool`). */
  package: string;
  /** The largest message either way, in bytes. */
  maxMessageBytes: number;
  /** grpc-js server interceptors, run on every call before its handler (and before its body is read). */
  interceptors?: ServerInterceptor[];
  credentials?: ServerCredentials;
  /** How long shutdown waits for calls in flight before cutting them off. */
  shutdownGraceMs?: number;
}

/**
 * Nest's gRPC transport (`ServerGrpc`: `@GrpcMethod` handlers, Nest's exception
 * handling and lifecycle) with what the worker's wire needs on top: the services come
 * from the generated ts-proto codecs, not from a .proto loaded at run time (so a
 * method can keep a hand-written decoder: ExecuteTask's zero-copy zip); the message cap
 * and server interceptors go to grpc-js's Server; and shutdown is bounded — calls in
 * flight get `shutdownGraceMs` to finish, then are cut off, where Nest's own
 * `gracefulShutdown` would wait on a stalled 1 GiB upload for ever.
 */
export class GrpcTransport extends ServerGrpc {
  private readonly graceMs: number;

  constructor(opts: GrpcTransportOptions) {
    super({
      url: opts.url,
      package: opts.package,
      packageDefinition: opts.packageDefinition,
      credentials: opts.credentials,
      maxReceiveMessageLength: opts.maxMessageBytes,
      maxSendMessageLength: opts.maxMessageBytes,
      // grpc-js reads `interceptors` from the options its Server is built with.
      channelOptions: { ...messageSizeOptions(opts.maxMessageBytes), interceptors: opts.interceptors ?? [] } as ChannelOptions,
    });
    this.graceMs = opts.shutdownGraceMs ?? 5000;
  }

  override async close(): Promise<void> {
    const server = this.grpcClient;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, this.graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    // Nest's close() with gracefulShutdown off only force-closes what is left.
    await super.close();
  }
}

/**
 * A grpc-js package definition for generated services, in the shape proto-loader
 * gives and Nest's transport expects: methods keyed by their proto names
 * (`ExecuteTask`, which `@GrpcMethod('WorkerNodeService', 'ExecuteTask')` names), with
 * the generated codecs. `overrides` replaces a method's request decoder.
 */
export function servicePackage(
  services: Record<string, ServiceDefinition>,
  overrides: Record<string, (bytes: Buffer) => unknown> = {},
): PackageDefinition {
  const pkg: PackageDefinition = {};
  for (const [fullName, service] of Object.entries(services)) {
    const methods: Record<string, unknown> = {};
    for (const [originalName, method] of Object.entries(service)) {
      const rpc = method.path.slice(method.path.lastIndexOf('/') + 1);
      const decode = overrides[method.path];
      methods[rpc] = { ...method, originalName, ...(decode ? { requestDeserialize: decode } : {}) };
    }
    pkg[fullName] = methods as ServiceDefinition;
  }
  return pkg;
}
