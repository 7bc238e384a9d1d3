import * as path from 'node:path';
import { existsSync } from 'node:fs';
import type { NextFunction, Request, Response } from 'express';
import { DASHBOARD_COOKIE, presentedToken, tokenMatches } from '@hivemind/shared/http/dashboard-token';

export const DASHBOARD_TOKEN = Symbol('DASHBOARD_TOKEN');

/** What needs no token: health checks, the login page, and /metrics when it is open. */
function isOpen(p: string, metricsOpen: boolean): boolean {
  return p === '/health' || p.startsWith('/health/') || p === '/login' || p === '/static/login.css' || (metricsOpen && p === '/metrics');
}

/**
 * Guards everything the gateway serves over HTTP (dashboard, API, Bull Board,
 * settings) with the dashboard token, sent as `Authorization: Bearer <token>` or in
 * the cookie the login form sets. A browser asking for a page is sent to /login; any
 * other request gets 401.
 */
export function dashboardAuth(token: string, opts: { metricsOpen: boolean }) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (isOpen(req.path, opts.metricsOpen)) return next();
    if (tokenMatches(presentedToken(req.headers, req.cookies as Record<string, string> | undefined), token)) return next();
    const wantsPage = req.method === 'GET' && !req.path.startsWith('/api/') && (req.headers.accept ?? '').includes('text/html');
    if (wantsPage) {
      res.redirect(303, '/login');
      return;
    }
    res.status(401).json({ statusCode: 401, error: 'Unauthorized', message: 'the dashboard token is required: send Authorization: Bearer <token>, or log in at /login' });
  };
}

/**
 * Whether the request came over TLS: to this server (an HTTPS listener), or to a proxy
 * in front of it that says so (`X-Forwarded-Proto: https`, or `Forwarded: proto=https`).
 * The headers are believed here because they can only make the cookie stricter.
 */
export function cameOverTls(req: Request): boolean {
  if (req.secure) return true;
  const xfp = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(xfp) ? xfp[0] : xfp)?.split(',')[0].trim().toLowerCase();
  if (first === 'https') return true;
  const fwd = req.headers.forwarded?.split(',')[0] ?? '';
  return /(^|;)\s*proto="?https"?\s*(;|$)/i.test(fwd);
}

/**
 * The login cookie: HttpOnly, SameSite=Strict (no cross-site request carries it), and
 * Secure when the login came over TLS or DASHBOARD_COOKIE_SECURE says always.
 */
export function setLoginCookie(res: Response, token: string, secure: boolean): void {
  res.cookie(DASHBOARD_COOKIE, token, { httpOnly: true, sameSite: 'strict', secure, path: '/', maxAge: 30 * 86_400_000 });
}

export function clearLoginCookie(res: Response, secure: boolean): void {
  res.clearCookie(DASHBOARD_COOKIE, { httpOnly: true, sameSite: 'strict', secure, path: '/' });
}

/** The dashboard's static files (apps/gateway/public), found from src or dist. */
export function publicDir(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'apps', 'gateway', 'public');
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error('apps/gateway/public (the dashboard files) not found above ' + __dirname);
    dir = path.dirname(dir);
  }
}
