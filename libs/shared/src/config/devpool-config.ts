import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { num, oneOf, parseEnv, str, optStr } from './env-parsers';

/** Configuration of the local development Node Pool (apps/devpool). */
export const devpoolEnvSchema = z.object({
  DEVPOOL_BIND: str('0.0.0.0'),
  DEVPOOL_PORT: num(50051, { int: true, min: 1, max: 65535 }),
  /** Users as name:password[:balance], comma separated. */
  DEVPOOL_USERS: str('alice:alice-password:100,bob:bob-password:100').superRefine((v, ctx) => {
    for (const u of v.split(',')) {
      if (!/^[A-Za-z0-9_.-]+:[^:]+(:\d+)?$/.test(u.trim())) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected name:password[:balance],... got "${u}"` });
      }
    }
  }),
  DEVPOOL_JWT_SECRET: optStr(),
  DEVPOOL_TOKEN_TTL: num(3600, { int: true, min: 1 }),
  DEVPOOL_DISPATCH_INTERVAL: num(10, { min: 0.1 }),
  DEVPOOL_CONNECT_TIMEOUT: num(5, { min: 0.1 }),
  DEVPOOL_EXECUTE_DEADLINE: num(40, { min: 1 }),
  DEVPOOL_LIVENESS_TIMEOUT: num(60, { min: 1 }),
  DEVPOOL_HEARTBEAT_TIMEOUT: num(180, { min: 1 }),
  DEVPOOL_NODE_FORGET: num(900, { min: 1 }),
  DEVPOOL_RECORD_DELAY_MS: num(200, { int: true, min: 0 }),
  DEVPOOL_MAX_MESSAGE_MB: num(1024, { int: true, min: 1, max: 2047 }),
  DEVPOOL_TLS_CERT: optStr(),
  DEVPOOL_TLS_KEY: optStr(),
  DEVPOOL_WORKER_CA: optStr(),
  DEVPOOL_CLIENT_CERT: optStr(),
  DEVPOOL_CLIENT_KEY: optStr(),
  DEVPOOL_SHARED_SECRET: optStr(),
  LOG_LEVEL: str('info'),
  /** stdout: json, or pretty (lines for a person). */
  LOG_FORMAT: oneOf(['json', 'pretty'] as const, 'json'),
});

export interface DevpoolUser {
  userId: number;
  username: string;
  password: string;
  balance: number;
}

export interface DevpoolConfig extends z.output<typeof devpoolEnvSchema> {
  users: DevpoolUser[];
  jwtSecret: string;
  maxMessageBytes: number;
}

export const DEVPOOL_CONFIG = Symbol('DEVPOOL_CONFIG');

export function loadDevpoolConfig(env: Record<string, string | undefined> = process.env): DevpoolConfig {
  const e = parseEnv(devpoolEnvSchema, env);
  const users = e.DEVPOOL_USERS.split(',').map((u, i) => {
    const [username, password, balance] = u.trim().split(':');
    return { userId: i + 1, username, password, balance: Number(balance ?? 0) };
  });
  return {
    ...e,
    users,
    jwtSecret: e.DEVPOOL_JWT_SECRET ?? randomBytes(32).toString('hex'),
    maxMessageBytes: e.DEVPOOL_MAX_MESSAGE_MB * 1024 * 1024,
  };
}
