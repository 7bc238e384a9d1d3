import { Module } from '@nestjs/common';
import { EventHub } from './event-hub';
import { EventsStreamController } from './events-stream.controller';
import { NodeEventsController } from './node-events.controller';

/**
 * The live stream: the node's events from the Redis transport (NodeEventsController,
 * served by the gateway's microservice, see main.ts) to the dashboards (GET /api/events).
 */
@Module({
  controllers: [NodeEventsController, EventsStreamController],
  providers: [EventHub],
})
export class GatewayEventsModule {}
