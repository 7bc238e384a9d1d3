import type { Redis } from 'ioredis';
import { z } from 'zod';

type Arg = string | number;

/**
 * A Lua script registered once on a connection (ioredis `defineCommand`: EVALSHA, with
 * the script's text sent again only when Redis has not cached it) and called by name.
 * Each repository defines its scripts beside the code that reads their answers.
 */
export function defineScript<T>(redis: Redis, name: string, numberOfKeys: number, lua: string): (...args: Arg[]) => Promise<T> {
  const commands = redis as unknown as Record<string, ((...a: Arg[]) => Promise<T>) | undefined>;
  if (typeof commands[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua });
  return (...args: Arg[]) => (commands[name] as (...a: Arg[]) => Promise<T>).apply(redis, args);
}

/**
 * Parses one stored JSON value with its schema; null when it is missing, not JSON or
 * not of the schema's shape (a reader skips an entry it cannot trust rather than fail).
 */
export function parseJson<T>(schema: z.ZodType<T>, raw: string | null | undefined): T | null {
  if (raw === null || raw === undefined) return null;
  try {
    const r = schema.safeParse(JSON.parse(raw));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** Every parsable entry of a hash of JSON values, by field. */
export function parseHash<T>(schema: z.ZodType<T>, raw: Record<string, string>): Map<string, T> {
  const out = new Map<string, T>();
  for (const [k, v] of Object.entries(raw)) {
    const parsed = parseJson(schema, v);
    if (parsed !== null) out.set(k, parsed);
  }
  return out;
}
