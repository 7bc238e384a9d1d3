import { ChannelCredentials, Metadata } from '@grpc/grpc-js';
import { DevpoolConfig } from '@hivemind/shared/config/devpool-config';
import { WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { messageSizeOptions } from '@hivemind/shared/proto/grpc';
import { SECRET_METADATA_KEY } from '@hivemind/shared/security/caller-guard';
import { channelCredentials } from '@hivemind/shared/security/tls';

/**
 * How the pool calls a worker: a fresh channel per call (as the deployed pool does),
 * plaintext by default, TLS/mTLS and a shared secret when configured.
 */
export class WorkerDialer {
  private readonly creds: ChannelCredentials;

  constructor(private readonly config: DevpoolConfig) {
    this.creds = channelCredentials({
      tls: Boolean(config.DEVPOOL_WORKER_CA),
      ca: config.DEVPOOL_WORKER_CA,
      cert: config.DEVPOOL_CLIENT_CERT,
      key: config.DEVPOOL_CLIENT_KEY,
      names: { ca: 'DEVPOOL_WORKER_CA', cert: 'DEVPOOL_CLIENT_CERT', key: 'DEVPOOL_CLIENT_KEY' },
    });
  }

  client(hostname: string, port: number): WorkerNodeServiceClient {
    return new WorkerNodeServiceClient(`${hostname}:${port}`, this.creds, messageSizeOptions(this.config.maxMessageBytes));
  }

  metadata(): Metadata {
    const md = new Metadata();
    if (this.config.DEVPOOL_SHARED_SECRET) md.set(SECRET_METADATA_KEY, this.config.DEVPOOL_SHARED_SECRET);
    return md;
  }
}
