import { readFileSync } from 'node:fs';
import { ChannelCredentials, credentials, ServerCredentials } from '@grpc/grpc-js';
import { ConfigError } from '../config/env-parsers';
import { errorMessage } from '../util/errors';

function read(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`Invalid configuration:\n  ${variable}: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  }
}

export interface ServerTlsFiles {
  cert?: string;
  key?: string;
  /** When set, callers must present a certificate signed by this CA (mTLS). */
  clientCa?: string;
  names: { cert: string; key: string; clientCa: string };
}

/** Plaintext unless a certificate and key are configured. */
export function serverCredentials(f: ServerTlsFiles): ServerCredentials {
  if (!f.cert && !f.key) {
    if (f.clientCa) throw new ConfigError(`Invalid configuration:\n  ${f.names.clientCa}: needs ${f.names.cert} and ${f.names.key} too`);
    return ServerCredentials.createInsecure();
  }
  if (!f.cert || !f.key) throw new ConfigError(`Invalid configuration:\n  ${f.cert ? f.names.key : f.names.cert}: is required with ${f.cert ? f.names.cert : f.names.key}`);
  const pair = { cert_chain: read(f.cert, f.names.cert), private_key: read(f.key, f.names.key) };
  const ca = f.clientCa ? read(f.clientCa, f.names.clientCa) : null;
  return ServerCredentials.createSsl(ca, [pair], Boolean(ca));
}

export interface ClientTlsFiles {
  tls: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  names: { ca: string; cert: string; key: string };
}

/** Plaintext unless TLS is on (a CA file turns it on); a client certificate is optional. */
export function channelCredentials(f: ClientTlsFiles): ChannelCredentials {
  if (!f.tls && !f.ca) return credentials.createInsecure();
  if (Boolean(f.cert) !== Boolean(f.key)) {
    throw new ConfigError(`Invalid configuration:\n  ${f.cert ? f.names.key : f.names.cert}: is required with ${f.cert ? f.names.cert : f.names.key}`);
  }
  return credentials.createSsl(
    f.ca ? read(f.ca, f.names.ca) : null,
    f.key ? read(f.key, f.names.key) : null,
    f.cert ? read(f.cert, f.names.cert) : null,
  );
}

/** The worker's channel to the pool, from POOL_TLS, POOL_TLS_CA, POOL_TLS_CERT and POOL_TLS_KEY. */
export function poolChannelCredentials(c: { POOL_TLS: boolean; POOL_TLS_CA?: string; POOL_TLS_CERT?: string; POOL_TLS_KEY?: string }): ChannelCredentials {
  return channelCredentials({
    tls: c.POOL_TLS,
    ca: c.POOL_TLS_CA,
    cert: c.POOL_TLS_CERT,
    key: c.POOL_TLS_KEY,
    names: { ca: 'POOL_TLS_CA', cert: 'POOL_TLS_CERT', key: 'POOL_TLS_KEY' },
  });
}
