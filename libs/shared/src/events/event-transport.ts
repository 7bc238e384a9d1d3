import { RedisOptions, Transport } from '@nestjs/microservices';
import type { WorkerConfig } from '../config/worker-config';
import { bullConnection } from '../queue/queues';

/** How long the event transport waits between reconnection attempts while Redis is away. */
const RECONNECT_DELAY_MS = 2000;

/**
 * The Redis transport's connection options, from REDIS_URL (with REDIS_PASSWORD or
 * REDIS_PASSWORD_FILE already in it, see loadWorkerConfig): host, port, user, password,
 * database and TLS as BullMQ's connections read them. Nest's Redis transport brings
 * its own retry strategy (retryAttempts, retryDelay); `reconnect` keeps it trying for
 * as long as the service runs, without it one failed attempt ends the connection.
 */
export function eventTransportOptions(config: Pick<WorkerConfig, 'REDIS_URL'>, name: string, reconnect: boolean): NonNullable<RedisOptions['options']> {
  const { retryStrategy: _ownStrategy, maxRetriesPerRequest: _bullSetting, ...connection } = bullConnection(config.REDIS_URL, name);
  return reconnect ? { ...connection, retryAttempts: Number.MAX_SAFE_INTEGER, retryDelay: RECONNECT_DELAY_MS } : connection;
}

/** The gateway's side: the Redis transport it serves as a Nest microservice (hybrid app). */
export function eventsServerOptions(config: Pick<WorkerConfig, 'REDIS_URL'>, service: string): RedisOptions {
  return { transport: Transport.REDIS, options: eventTransportOptions(config, `${service}-events`, true) };
}

/**
 * The emitters' side (monitor, executors): a ClientProxy that publishes and never
 * queues. While Redis is away an event fails at once (and is dropped) instead of
 * piling up in memory until Redis returns.
 */
export function eventsClientOptions(config: Pick<WorkerConfig, 'REDIS_URL'>, service: string): RedisOptions {
  return { transport: Transport.REDIS, options: { ...eventTransportOptions(config, `${service}-events`, true), enableOfflineQueue: false } };
}

/** The event transport as the health check pings it: one attempt, no retries. */
export function eventsPingOptions(config: Pick<WorkerConfig, 'REDIS_URL'>, service: string): Required<Pick<RedisOptions, 'transport' | 'options'>> & { timeout: number } {
  return { transport: Transport.REDIS, options: eventTransportOptions(config, `${service}-events-ping`, false), timeout: 2000 };
}
