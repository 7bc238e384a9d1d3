import IORedis from 'ioredis';
import { NodeState, openNodeState } from '@hivemind/shared/state/node-state';
import { RedisKeys } from '@hivemind/shared/state/redis-keys';
import { redisUrl, uniquePrefix } from '../../support/stack';

/**
 * One test's view of the node's state: the repositories over their own connection
 * (as a service holds them), a raw client for writing what no repository would (malformed
 * entries, a foreign lock, SCRIPT FLUSH), and the key names.
 */
export interface StateFixture {
  state: NodeState;
  /** The connection the repositories use. */
  conn: IORedis;
  /** A separate raw client. */
  raw: IORedis;
  keys: RedisKeys;
  close(): Promise<void>;
}

export function openFixture(name: string): StateFixture {
  const prefix = uniquePrefix(name);
  const conn = new IORedis(redisUrl());
  const raw = new IORedis(redisUrl());
  return {
    state: openNodeState(conn, prefix),
    conn,
    raw,
    keys: new RedisKeys(prefix),
    close: async () => {
      const left = await raw.keys(`${prefix}:*`);
      if (left.length) await raw.del(...left);
      await Promise.all([conn.quit(), raw.quit()]);
    },
  };
}

/** Polls `fn` until it returns a truthy value, or fails after `ms`. */
export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Makes Redis forget every cached script (the repositories' scripts must still run). */
export async function flushScripts(raw: IORedis): Promise<void> {
  expect(await raw.script('FLUSH')).toBe('OK');
}
