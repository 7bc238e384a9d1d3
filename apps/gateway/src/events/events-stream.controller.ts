import { Controller, MessageEvent, Sse } from '@nestjs/common';
import { ApiBearerAuth, ApiCookieAuth, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { interval, map, merge, Observable } from 'rxjs';
import { EventHub } from './event-hub';

/** A comment-like event that keeps idle proxies from closing the stream. */
const KEEP_ALIVE_MS = 15_000;

/**
 * The node's live events as Server-Sent Events: one stream per dashboard, behind the
 * dashboard token like the rest of /api. Each SSE event is named after the node event
 * (NodeEvent) and carries its validated payload as JSON.
 */
@ApiTags('dashboard')
@ApiBearerAuth()
@ApiCookieAuth('hivemind_dashboard')
@Controller('api')
export class EventsStreamController {
  constructor(private readonly hub: EventHub) {}

  @ApiOperation({ summary: 'Live node events as Server-Sent Events: host samples, health and owner changes, tasks started, finished and stopped' })
  @ApiProduces('text/event-stream')
  @Sse('events')
  events(): Observable<MessageEvent> {
    return merge(
      this.hub.events.pipe(map((m): MessageEvent => ({ type: m.event, data: m.data }))),
      interval(KEEP_ALIVE_MS).pipe(map((): MessageEvent => ({ type: 'keep-alive', data: {} }))),
    );
  }
}
