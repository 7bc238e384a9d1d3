import { DynamicModule, Inject, Injectable, Module } from '@nestjs/common';
import { ClientProxy, ClientsModule } from '@nestjs/microservices';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '../config/worker-config';
import { LOGGER } from '../logging/logger';
import { errorMessage } from '../util/errors';
import { eventsClientOptions } from './event-transport';
import { NodeEvent, NodeEventData } from './node-events';

export const EVENTS_CLIENT = Symbol('EVENTS_CLIENT');

/** At most one line about failed emits per this many ms (with the count since the last). */
const FAILURE_LOG_EVERY_MS = 60_000;

/**
 * Emits the node's events (NodeEvent) through the Nest ClientProxy on the Redis
 * transport. Fire and forget: emit() returns at once and never throws; an event that
 * cannot be sent (Redis away, a bad payload) is dropped and logged, at most one line a
 * minute. What the events report is also kept in Redis by its owner (samples, running
 * tasks, results), so a dropped event only delays what the dashboard shows.
 */
@Injectable()
export class NodeEvents {
  private failed = 0;
  private lastLogAt = 0;

  constructor(
    @Inject(EVENTS_CLIENT) private readonly client: ClientProxy,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  emit<E extends NodeEvent>(event: E, data: NodeEventData<E>): void {
    try {
      this.client.emit(event, { ...data, node: this.config.REDIS_PREFIX }).subscribe({ error: (err: unknown) => this.dropped(event, err) });
    } catch (err) {
      this.dropped(event, err);
    }
  }

  private dropped(event: NodeEvent, err: unknown): void {
    this.failed += 1;
    const now = Date.now();
    if (now - this.lastLogAt < FAILURE_LOG_EVERY_MS) return;
    this.lastLogAt = now;
    this.logger.warn({ event, err: errorMessage(err), dropped: this.failed }, 'events not sent to the gateway (dropped; the dashboard catches up from Redis)');
    this.failed = 0;
  }
}

/** The event client (ClientsModule on the Redis transport, from the worker config) and NodeEvents. */
@Module({})
export class NodeEventsModule {
  static forRoot(service: string): DynamicModule {
    return {
      module: NodeEventsModule,
      imports: [
        ClientsModule.registerAsync([{ name: EVENTS_CLIENT, inject: [WORKER_CONFIG], useFactory: (config: WorkerConfig) => eventsClientOptions(config, service) }]),
      ],
      providers: [NodeEvents],
      exports: [NodeEvents],
    };
  }
}
