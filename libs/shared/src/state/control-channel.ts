import type { Redis } from 'ioredis';
import { z } from 'zod';
import { RedisKeys } from './redis-keys';
import { parseJson } from './scripts';

/** How long a stop request waits for a task that has not started yet. */
export const STOP_FLAG_TTL_S = 24 * 3600;

export const controlMessageSchema = z.object({ type: z.literal('stop'), taskId: z.string() });
export type ControlMessage = z.infer<typeof controlMessageSchema>;

export const pauseSchema = z.object({ at: z.number(), by: z.string() });
export type PauseState = z.infer<typeof pauseSchema>;

/** A live subscription to the control channel; close() ends it and its connection. */
export interface ControlSubscription {
  close(): void;
}

/**
 * How the gateway steers the node: stop a task, pause and resume the node.
 * - Stop: the gateway (StopTaskExecution) sets the task's stop flag (`stop:<id>`, expires
 *   after STOP_FLAG_TTL_S, deleted by the gateway when the task is over) and publishes a
 *   stop message on the control channel; every executor subscribes, the one running the
 *   task stops it, and one that has not started it yet finds the flag.
 * - Pause: the dashboard's (or the CLI's) pause creates the pause key, resume deletes it;
 *   the gateway reads it for its status and admission.
 */
export class ControlChannel {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async requestStop(taskId: string, now = Date.now()): Promise<void> {
    await this.redis.set(this.keys.stop(taskId), String(now), 'EX', STOP_FLAG_TTL_S);
    const msg: ControlMessage = { type: 'stop', taskId };
    await this.redis.publish(this.keys.control, JSON.stringify(msg));
  }

  async stopRequested(taskId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.stop(taskId))) === 1;
  }

  async clearStop(taskId: string): Promise<void> {
    await this.redis.del(this.keys.stop(taskId));
  }

  /**
   * Calls `onMessage` for each control message, on a connection of its own (a subscribed
   * connection can do nothing else); a malformed message goes to `onMalformed`.
   */
  async subscribe(name: string, onMessage: (msg: ControlMessage) => void, onMalformed: (raw: string) => void = () => undefined): Promise<ControlSubscription> {
    const sub = this.redis.duplicate({ connectionName: name });
    sub.on('message', (_channel: string, raw: string) => {
      const msg = parseJson(controlMessageSchema, raw);
      if (msg) onMessage(msg);
      else onMalformed(raw);
    });
    await sub.subscribe(this.keys.control);
    return { close: () => sub.disconnect() };
  }

  async pause(by: string, now = Date.now()): Promise<void> {
    const state: PauseState = { at: now, by };
    await this.redis.set(this.keys.paused, JSON.stringify(state));
  }

  async resume(): Promise<void> {
    await this.redis.del(this.keys.paused);
  }

  async isPaused(): Promise<boolean> {
    return (await this.redis.exists(this.keys.paused)) === 1;
  }

  /** Since when and by whom the node is paused; null when it is not. An unreadable flag still pauses. */
  async pauseState(): Promise<PauseState | null> {
    const raw = await this.redis.get(this.keys.paused);
    if (raw === null) return null;
    return parseJson(pauseSchema, raw) ?? { at: 0, by: 'unknown' };
  }
}
