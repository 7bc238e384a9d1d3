import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { defer, EMPTY, merge, Observable, of, Subject } from 'rxjs';
import { NodeEvent, NodeEventMessage } from '@hivemind/shared/events/node-events';

/**
 * Where the gateway's validated node events meet the dashboards that follow them: the
 * event handlers push, each open SSE stream subscribes. Only the monitor's last health
 * change is kept (a stream starts with it: the API has no other view of it); for the
 * rest a dashboard that connects later starts from /api (history, task lists).
 */
@Injectable()
export class EventHub implements OnApplicationShutdown {
  private readonly subject = new Subject<NodeEventMessage>();
  private lastHealth: NodeEventMessage | null = null;

  get events(): Observable<NodeEventMessage> {
    return merge(defer(() => (this.lastHealth ? of(this.lastHealth) : EMPTY)), this.subject);
  }

  publish(message: NodeEventMessage): void {
    if (message.event === NodeEvent.HealthChanged) this.lastHealth = message;
    this.subject.next(message);
  }

  onApplicationShutdown(): void {
    this.subject.complete();
  }
}
