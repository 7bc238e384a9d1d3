import { randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../config/env-parsers';
import { assertPrivateFile } from '../security/secrets';

/** Where the token came from: a fresh one is printed once, with the dashboard's URL. */
export interface DashboardToken {
  token: string;
  created: boolean;
}

const TOKEN_RE = /^[A-Za-z0-9_-]{32,256}$/;

/**
 * The dashboard's token: DASHBOARD_TOKEN when set; else the token file (mode 0600,
 * refused when others may read it); else, when `create`, a new random one written there.
 */
export async function loadDashboardToken(c: { DASHBOARD_TOKEN?: string; dashboardTokenFile: string }, create: boolean): Promise<DashboardToken | null> {
  if (c.DASHBOARD_TOKEN !== undefined) {
    if (!TOKEN_RE.test(c.DASHBOARD_TOKEN)) {
      throw new ConfigError('Invalid configuration:\n  DASHBOARD_TOKEN: expected 32 to 256 characters of A-Z, a-z, 0-9, _ or -');
    }
    return { token: c.DASHBOARD_TOKEN, created: false };
  }
  const file = c.dashboardTokenFile;
  try {
    const text = (await fs.readFile(file, 'utf8')).trim();
    assertPrivateFile(file, 'DASHBOARD_TOKEN_FILE');
    if (!TOKEN_RE.test(text)) throw new ConfigError(`Invalid configuration:\n  DASHBOARD_TOKEN_FILE: "${file}" does not hold a token; delete it and a new one is made at the next start`);
    return { token: text, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!create) return null;
  const token = randomBytes(32).toString('base64url');
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    // 0600 from the first byte; 'wx' so two starting gateways never both write one.
    await fs.writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadDashboardToken(c, false);
    throw err;
  }
  return { token, created: true };
}

/** Constant-time comparison of a presented token with the real one. */
export function tokenMatches(given: string | undefined | null, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token a request presents: `Authorization: Bearer <token>`, else the login cookie. */
export function presentedToken(headers: { authorization?: string }, cookies: Record<string, string> | undefined): string | null {
  const auth = headers.authorization;
  if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  return cookies?.[DASHBOARD_COOKIE] ?? null;
}

export const DASHBOARD_COOKIE = 'hivemind_dashboard';
