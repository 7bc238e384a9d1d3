import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import type { NodeEventMessage } from '@hivemind/shared/events/node-events';

/**
 * Where the gateway's validated node events meet the dashboards that follow them: the
 * event handlers push, each open SSE stream subscribes. Nothing is kept: a dashboard
 * that connects later starts from /api (the monitor's history, the task lists).
 */
@Injectable()
export class EventHub implements OnApplicationShutdown {
  private readonly subject = new Subject<NodeEventMessage>();

  get events(): Observable<NodeEventMessage> {
    return this.subject.asObservable();
  }

  publish(message: NodeEventMessage): void {
    this.subject.next(message);
  }

  onApplicationShutdown(): void {
    this.subject.complete();
  }
}
