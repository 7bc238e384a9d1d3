import type { NextFunction, Request, Response } from 'express';
import { Counter, Registry } from 'prom-client';
import { UnauthorizedException } from '@nestjs/common';
import { MetricsController } from '@hivemind/shared/http/health';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { cameOverTls, dashboardAuth } from './dashboard-auth';

const TOKEN = 'T'.repeat(43);

/** Runs the middleware on a request and says what it did. */
function run(mw: ReturnType<typeof dashboardAuth>, req: { path: string; method?: string; headers?: Record<string, string>; cookies?: Record<string, string> }) {
  const out: { next: boolean; status?: number; redirect?: string } = { next: false };
  const res = {
    status(code: number) {
      out.status = code;
      return this;
    },
    json() {
      return this;
    },
    redirect(code: number, to: string) {
      out.status = code;
      out.redirect = to;
    },
  } as unknown as Response;
  mw({ method: 'GET', headers: {}, ...req } as unknown as Request, res, (() => (out.next = true)) as NextFunction);
  return out;
}

describe('the dashboard token guard', () => {
  const guard = dashboardAuth(TOKEN, { metricsOpen: true });

  it('lets health checks, the login page and (by default) /metrics through without a token', () => {
    for (const p of ['/health/live', '/health/ready', '/login', '/static/login.css', '/metrics']) expect(run(guard, { path: p }).next).toBe(true);
  });

  it('wants the token for everything else: a page asks to log in, anything else gets 401', () => {
    for (const p of ['/', '/api/status', '/queues', '/static/dashboard.js', '/api/docs', '/healthz']) {
      expect(run(guard, { path: p }).status).toBe(401);
    }
    expect(run(guard, { path: '/', headers: { accept: 'text/html' } })).toMatchObject({ status: 303, redirect: '/login' });
    expect(run(guard, { path: '/api/status', headers: { accept: 'text/html' } }).status).toBe(401);
    expect(run(guard, { path: '/api/status', headers: { authorization: `Bearer ${TOKEN}` } }).next).toBe(true);
    expect(run(guard, { path: '/', cookies: { hivemind_dashboard: TOKEN } }).next).toBe(true);
    expect(run(guard, { path: '/', cookies: { hivemind_dashboard: TOKEN.slice(1) } }).status).toBe(401);
  });

  it('guards /metrics too with METRICS_AUTH', () => {
    const strict = dashboardAuth(TOKEN, { metricsOpen: false });
    expect(run(strict, { path: '/metrics' }).status).toBe(401);
    expect(run(strict, { path: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } }).next).toBe(true);
  });
});

describe('/metrics on the monitor and executor with METRICS_AUTH', () => {
  it('answers only with the dashboard token', async () => {
    const registry = new Registry();
    registry.setDefaultLabels({ service: 'monitor' });
    new Counter({ name: 'probe_total', help: 'a probe', registers: [registry] }).inc();
    const c = new MetricsController(registry, { metricsAuth: true, DASHBOARD_TOKEN: TOKEN, dashboardTokenFile: '/nonexistent' } as WorkerConfig);
    let sent = '';
    const res = { setHeader: () => undefined, send: (b: string) => (sent = b) } as unknown as Response;
    await expect(c.metrics({ headers: {} } as Request, res)).rejects.toThrow(UnauthorizedException);
    await expect(c.metrics({ headers: { authorization: 'Bearer nope' } } as Request, res)).rejects.toThrow(UnauthorizedException);
    await c.metrics({ headers: { authorization: `Bearer ${TOKEN}` } } as Request, res);
    expect(sent).toContain('probe_total{service="monitor"} 1');
  });
});

describe('whether a login came over TLS (the cookie is then Secure)', () => {
  const req = (secure: boolean, headers: Record<string, string> = {}) => ({ secure, headers }) as unknown as Request;

  it('is true on an HTTPS listener, or when the proxy in front says https', () => {
    expect(cameOverTls(req(true))).toBe(true);
    expect(cameOverTls(req(false, { 'x-forwarded-proto': 'https' }))).toBe(true);
    expect(cameOverTls(req(false, { 'x-forwarded-proto': 'HTTPS, http' }))).toBe(true);
    expect(cameOverTls(req(false, { forwarded: 'for=192.0.2.1;proto=https;host=node.example' }))).toBe(true);
    expect(cameOverTls(req(false, { forwarded: 'proto="https"' }))).toBe(true);
  });

  it('is false on plain HTTP', () => {
    expect(cameOverTls(req(false))).toBe(false);
    expect(cameOverTls(req(false, { 'x-forwarded-proto': 'http' }))).toBe(false);
    expect(cameOverTls(req(false, { 'x-forwarded-proto': 'http, https' }))).toBe(false);
    expect(cameOverTls(req(false, { forwarded: 'for=192.0.2.1;proto=http' }))).toBe(false);
    expect(cameOverTls(req(false, { forwarded: 'host=https.example' }))).toBe(false);
  });
});
