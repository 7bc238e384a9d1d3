import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import { connectNodeState, NodeStateConnection } from '@hivemind/shared/state/node-state';

/**
 * `hivemind-worker health <service>`: the container health check.
 *
 * It asks the service's HTTP health endpoint (GET /health/ready on 127.0.0.1: the
 * gateway's HTTP_PORT, default 5001; the monitor's MONITOR_HTTP_PORT, 5002; the
 * executor's EXECUTOR_HEALTH_PORT, 5003, 0 for none). Ready is a 200; any other answer
 * is unhealthy. When nothing listens there (a build without the HTTP endpoints, or the
 * executor's turned off), and HEALTHCHECK_FALLBACK is not false, it checks what every
 * build has: the gateway's gRPC port accepts connections and Redis answers; the executor
 * (whose executor id starts with this host's name) has beaten into Redis in the last
 * 20 s with a runtime; the monitor published a sample in the last 60 s. devpool has no
 * HTTP endpoint: its gRPC port must accept connections.
 */

export type ServiceName = 'gateway' | 'executor' | 'monitor' | 'devpool';
export const SERVICES: readonly ServiceName[] = ['gateway', 'executor', 'monitor', 'devpool'];

export interface HealthResult {
  ok: boolean;
  detail: string;
}

const BEAT_FRESH_MS = 20_000;
const SAMPLE_FRESH_MS = 60_000;

function intOf(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined || v.trim() === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name}: expected a port number, got "${v}"`);
  return n;
}

/** The HTTP health port of a service (0: none). */
export function healthPort(service: ServiceName, env: Record<string, string | undefined>): number {
  switch (service) {
    case 'gateway':
      return intOf(env.HTTP_PORT, 5001, 'HTTP_PORT');
    case 'monitor':
      return intOf(env.MONITOR_HTTP_PORT, 5002, 'MONITOR_HTTP_PORT');
    case 'executor':
      return intOf(env.EXECUTOR_HEALTH_PORT, 5003, 'EXECUTOR_HEALTH_PORT');
    case 'devpool':
      return 0;
  }
}

type Probe = { kind: 'answer'; status: number; body: string } | { kind: 'refused' };

function getReady(port: number, timeoutMs: number): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health/ready', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body = (body + c).slice(0, 2000)));
      res.on('end', () => resolve({ kind: 'answer', status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port} within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? resolve({ kind: 'refused' }) : reject(err)));
  });
}

export function tcpOpen(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`${host}:${port} did not accept a connection within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.end();
      resolve();
    });
    s.once('error', (err) => {
      clearTimeout(t);
      reject(new Error(`${host}:${port}: ${err.message}`));
    });
  });
}

/** Runs `fn` over the node's state, on one connection that fails fast (no retries, no queueing). */
async function withState<T>(env: Record<string, string | undefined>, timeoutMs: number, fn: (s: NodeStateConnection) => Promise<T>): Promise<T> {
  let lastError: Error | undefined;
  const s = connectNodeState(env.REDIS_URL || 'redis://127.0.0.1:6379', env.REDIS_PREFIX || 'hivemind', 'healthcheck', {
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    onError: (err: Error) => (lastError = err),
  });
  try {
    await s.connect();
    return await fn(s);
  } catch (err) {
    throw new Error(`Redis: ${(lastError ?? (err as Error)).message}`);
  } finally {
    s.disconnect();
  }
}

async function fallback(service: ServiceName, env: Record<string, string | undefined>, timeoutMs: number): Promise<HealthResult> {
  if (service === 'devpool') {
    const port = intOf(env.DEVPOOL_PORT, 50051, 'DEVPOOL_PORT');
    await tcpOpen('127.0.0.1', port, timeoutMs);
    return { ok: true, detail: `devpool accepts connections on ${port}` };
  }
  if (service === 'gateway') {
    const port = intOf(env.GRPC_PORT, 50053, 'GRPC_PORT');
    await tcpOpen('127.0.0.1', port, timeoutMs);
    await withState(env, timeoutMs, (s) => s.ping());
    return { ok: true, detail: `gRPC port ${port} accepts connections and Redis answers` };
  }
  if (service === 'executor') {
    const host = os.hostname();
    const beats = await withState(env, timeoutMs, (s) => s.executors.all());
    const mine = beats.filter((b) => b.executorId.startsWith(`${host}-`));
    const fresh = mine.find((b) => Date.now() - b.seenAt <= BEAT_FRESH_MS && b.runtime !== 'none');
    if (!fresh) return { ok: false, detail: mine.length ? `executor ${mine[0].executorId} is not ready (runtime ${mine[0].runtime})` : `no beat from an executor on ${host} in Redis` };
    return { ok: true, detail: `executor ${fresh.executorId} beat ${Math.round((Date.now() - fresh.seenAt) / 1000)} s ago (runtime ${fresh.runtime})` };
  }
  const at = (await withState(env, timeoutMs, (s) => s.monitor.latest(Number.POSITIVE_INFINITY)))?.at ?? 0;
  if (!at || Date.now() - at > SAMPLE_FRESH_MS) return { ok: false, detail: 'no host sample in Redis from the last 60 s' };
  return { ok: true, detail: `host sample ${Math.round((Date.now() - at) / 1000)} s old` };
}

export async function checkHealth(service: ServiceName, env: Record<string, string | undefined>, timeoutMs = 4000): Promise<HealthResult> {
  const port = healthPort(service, env);
  const allowFallback = !['0', 'false', 'no', 'off'].includes((env.HEALTHCHECK_FALLBACK ?? '').trim().toLowerCase());
  if (port > 0) {
    const probe = await getReady(port, timeoutMs);
    if (probe.kind === 'answer') {
      return { ok: probe.status === 200, detail: `GET /health/ready on ${port}: ${probe.status} ${probe.body.trim()}` };
    }
    if (!allowFallback) return { ok: false, detail: `nothing listens on 127.0.0.1:${port}` };
  }
  return fallback(service, env, timeoutMs);
}
