import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload, RedisContext, Transport } from '@nestjs/microservices';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { NodeEvent, NodeEventMessage, parseNodeEvent } from '@hivemind/shared/events/node-events';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { EventHub } from './event-hub';

/**
 * The node's events as they arrive over the Redis transport (from the monitor and the
 * executors): each payload is validated against its schema; a bad one is logged with
 * what was wrong and dropped, an event of another node (one Redis, another
 * REDIS_PREFIX) is dropped quietly, and the rest go to the hub (GET /api/events).
 */
@Controller()
export class NodeEventsController {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly hub: EventHub,
  ) {}

  @EventPattern(NodeEvent.HostSample, Transport.REDIS)
  hostSample(@Payload() data: unknown, @Ctx() ctx: RedisContext): void {
    this.take(NodeEvent.HostSample, data, ctx);
  }

  @EventPattern(NodeEvent.HealthChanged, Transport.REDIS)
  healthChanged(@Payload() data: unknown, @Ctx() ctx: RedisContext): void {
    this.take(NodeEvent.HealthChanged, data, ctx);
  }

  @EventPattern(NodeEvent.OwnerChanged, Transport.REDIS)
  ownerChanged(@Payload() data: unknown, @Ctx() ctx: RedisContext): void {
    this.take(NodeEvent.OwnerChanged, data, ctx);
  }

  @EventPattern(NodeEvent.TaskStarted, Transport.REDIS)
  taskStarted(@Payload() data: unknown, @Ctx() ctx: RedisContext): void {
    this.take(NodeEvent.TaskStarted, data, ctx);
  }

  @EventPattern(NodeEvent.TaskFinished, Transport.REDIS)
  taskFinished(@Payload() data: unknown, @Ctx() ctx: RedisContext): void {
    this.take(NodeEvent.TaskFinished, data, ctx);
  }

  @EventPattern(NodeEvent.TaskStopped, Transport.REDIS)
  taskStopped(@Payload() data: unknown, @Ctx() ctx: RedisContext): void {
    this.take(NodeEvent.TaskStopped, data, ctx);
  }

  private take(event: NodeEvent, data: unknown, ctx: RedisContext): void {
    const parsed = parseNodeEvent(event, data);
    if (!parsed.ok) {
      this.logger.warn({ event, channel: ctx.getChannel(), problem: parsed.problem }, 'dropping a malformed node event');
      return;
    }
    if (parsed.data.node !== this.config.REDIS_PREFIX) return;
    this.hub.publish({ event, data: parsed.data } as NodeEventMessage);
  }
}
