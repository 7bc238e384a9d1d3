import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ConfigError } from '@hivemind/shared/config/env-parsers';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { CallerGuard, CallerVerdict, defaultAllowlist, parseAllowlist } from '@hivemind/shared/security/caller-guard';
import { RefusalLog } from '@hivemind/shared/security/refusal-log';
import { readSecretFile } from '@hivemind/shared/security/secrets';
import { CallerRefusals } from '@hivemind/shared/state/caller-refusals';
import { Ticker } from '@hivemind/shared/util/ticker';
import { errorMessage } from '@hivemind/shared/util/errors';

/** How often the default allow list follows the pool's name to its current addresses. */
const RESOLVE_MS = 5 * 60_000;

/**
 * Who may push work to this node. The deployed pool sends no credentials, so by
 * default only the configured pool's own addresses (and loopback when the pool is on
 * loopback) may call ExecuteTask and StopTaskExecution; ALLOWED_POOL_ADDRESSES
 * replaces that list, and POOL_SHARED_SECRET adds a secret callers must send.
 * Refusals are logged with the caller's address (rate limited) and counted in Redis.
 */
@Injectable()
export class CallerGuardService implements OnApplicationBootstrap, OnApplicationShutdown {
  private guard: CallerGuard | null = null;
  private readonly refusalLog: RefusalLog;
  private readonly tickers: Ticker[] = [];

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly refusals: CallerRefusals,
  ) {
    this.refusalLog = new RefusalLog(({ address, reason, message, suppressed }) =>
      this.logger.warn({ caller: address, reason, suppressed }, `refused a caller: ${message}`),
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    const c = this.config;
    const secret = c.POOL_SHARED_SECRET ?? (c.POOL_SHARED_SECRET_FILE ? readSecretFile(c.POOL_SHARED_SECRET_FILE, 'POOL_SHARED_SECRET_FILE') : undefined);
    // An empty secret (say, a mis-mounted secret file) must not silently turn the check off.
    if (secret !== undefined && secret.trim().length < 8) {
      throw new ConfigError('Invalid configuration:\n  POOL_SHARED_SECRET: the shared secret is empty or shorter than 8 characters');
    }
    const entries = await this.allowEntries();
    this.guard = new CallerGuard(parseAllowlist(entries), entries, secret);
    this.logger.info({ allowed: entries, sharedSecret: Boolean(secret) }, 'callers allowed to push tasks');
    const onError = (name: string, err: unknown) => this.logger.warn({ job: name, err: errorMessage(err) }, 'caller guard job failed');
    this.tickers.push(new Ticker('refusal-log', 60_000, async () => this.refusalLog.flush(), onError));
    if (!c.ALLOWED_POOL_ADDRESSES) {
      this.tickers.push(new Ticker('resolve-pool', RESOLVE_MS, () => this.refresh(), onError));
    }
    for (const t of this.tickers) t.start(false);
  }

  onApplicationShutdown(): void {
    for (const t of this.tickers) t.stop();
    this.refusalLog.flush();
  }

  private async allowEntries(): Promise<string[]> {
    if (this.config.ALLOWED_POOL_ADDRESSES) return this.config.ALLOWED_POOL_ADDRESSES.split(',').map((s) => s.trim()).filter(Boolean);
    try {
      return await defaultAllowlist(this.config.NODE_POOL_ADDRESS);
    } catch (err) {
      this.logger.error({ pool: this.config.NODE_POOL_ADDRESS, err: errorMessage(err) }, 'cannot resolve the pool address; only loopback may push tasks until it resolves');
      return ['127.0.0.0/8', '::1/128'];
    }
  }

  private async refresh(): Promise<void> {
    const entries = await defaultAllowlist(this.config.NODE_POOL_ADDRESS);
    if (this.guard && entries.join() !== this.guard.allowDescription.join()) {
      this.guard.setAllowlist(parseAllowlist(entries), entries);
      this.logger.info({ allowed: entries }, 'pool address changed; allow list updated');
    }
  }

  /** Checks a caller; a refusal is logged and counted. */
  check(method: string, peer: string, metadata: Metadata): CallerVerdict {
    const verdict = this.guard ? this.guard.check(peer, metadata) : ({ ok: false, reason: 'ADDRESS', address: peer, message: 'the node is starting' } as const);
    if (!verdict.ok) {
      this.refusalLog.refused(verdict.address, verdict.reason, `${method}: ${verdict.message}`);
      void this.refusals.count(verdict.reason).catch(() => undefined);
    }
    return verdict;
  }
}
