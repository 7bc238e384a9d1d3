import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { grpcErrorText, UnaryFn } from '@hivemind/shared/proto/grpc';
import { PoolClient, PoolCredentials } from '@hivemind/shared/proto/pool-client';
import { poolChannelCredentials } from '@hivemind/shared/security/tls';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';

/** The volunteer's pool login, resolved once at boot (see security/secrets.ts). */
export const POOL_CREDENTIALS = Symbol('POOL_CREDENTIALS');

/** The gateway's one link to the Node Pool, and what it last heard from it. */
@Injectable()
export class PoolLinkService implements OnApplicationShutdown {
  readonly client: PoolClient;
  readonly nodeId: string;
  lastHeartbeatOk: number | null = null;
  lastError: string | null = null;
  lastErrorAt: number | null = null;
  balance: number | null = null;

  constructor(
    @Inject(WORKER_CONFIG) config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(POOL_CREDENTIALS) credentials: PoolCredentials,
    private readonly metrics: GatewayMetrics,
  ) {
    this.nodeId = credentials.username;
    this.client = new PoolClient(config.NODE_POOL_ADDRESS, credentials, {
      maxMessageBytes: config.maxMessageBytes,
      callTimeoutMs: config.POOL_CALL_TIMEOUT * 1000,
      channelCredentials: poolChannelCredentials(config),
      onRelogin: (err) => this.relogin(err),
    });
  }

  /** The pool refused our token (it expired, or the pool restarted with a new secret). */
  private relogin(err: unknown): void {
    this.metrics.poolRelogins.inc();
    this.logger.info({ err: grpcErrorText(err) }, 'the Node Pool refused our token; logging in again');
  }

  /** An authenticated call that records failures for status and logs. */
  async call<Req, Res>(method: string, client: object, fn: UnaryFn<Req, Res>, build: (token: string) => Req, timeoutMs?: number): Promise<Res> {
    try {
      const res = await this.client.call(client, fn, build, timeoutMs);
      this.lastError = null;
      return res;
    } catch (err) {
      this.lastError = `${method}: ${grpcErrorText(err)}`;
      this.lastErrorAt = Date.now();
      this.metrics.poolRpcErrors.inc({ method });
      this.logger.debug({ method, err: grpcErrorText(err) }, 'node pool call failed');
      throw err;
    }
  }

  onApplicationShutdown(): void {
    this.client.close();
  }
}
