import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { chromium, Browser } from 'playwright-core';
import { WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { executeRequest, ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { makeZip } from '../support/zips';
import { ROOT, RunningService, Stack, waitFor } from '../support/stack';
import { followStream } from '../support/sse';

/** Where the browser test leaves its screenshot (a CI artifact; gitignored). */
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';

/** A task that prints a numbered line every 0.3 s for about `seconds`. */
function tickerTask(marker: string, seconds: number) {
  const n = Math.round(seconds / 0.3);
  return makeZip([
    {
      name: 'run.py',
      content: `import time\nfor i in range(${n}):\n    print("${marker} tick", i, flush=True)\n    time.sleep(0.3)\nopen("result/out.txt", "w").write("done")\n`,
    },
  ]);
}

// API answers are checked field by field with toMatchObject.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

async function json(res: Response): Promise<Json> {
  return (await res.json()) as Json;
}

/**
 * The node seen and steered over HTTP: Terminus health on every service, the
 * dashboard token, the REST API, live output, history, metrics, Bull Board, and a
 * real browser driving the dashboard. Every service runs as its own process.
 */
describe('dashboard, API, health and metrics', () => {
  let stack: Stack;
  let pool: PoolClient;
  let gateway: RunningService;
  let monitor: RunningService;
  let executor: RunningService;
  let token: string;
  const auth = () => ({ Authorization: `Bearer ${token}` });
  const get = (p: string, headers: Record<string, string> = auth()) => fetch(`${stack.gatewayHttp}${p}`, { headers, redirect: 'manual' });

  beforeAll(async () => {
    stack = await Stack.create('dash', { HEALTH_HEARTBEAT_MAX_AGE: '3', TASK_HISTORY_SIZE: '5' });
    await stack.start('devpool');
    monitor = await stack.start('monitor');
    executor = await stack.start('executor');
    gateway = await stack.start('gateway');
    token = (await fs.readFile(stack.env.DASHBOARD_TOKEN_FILE, 'utf8')).trim();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
    await fs.mkdir(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  it('every service answers /health/live and /health/ready, naming each indicator', async () => {
    const ready = async (port: number) => {
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
      return { status: res.status, body: await json(res) };
    };
    // The pool link needs its first heartbeat, the monitor its first sample.
    const gw = await waitFor('gateway ready', async () => ((await ready(gateway.httpPort)).status === 200 ? ready(gateway.httpPort) : null), 30_000);
    expect(Object.keys(gw.body.details).sort()).toEqual(['events', 'pool', 'redis']);
    expect(gw.body.details.pool).toMatchObject({ status: 'up', loggedIn: true });
    // The event transport (Nest's Redis transport), pinged with Terminus's microservice check.
    expect(gw.body.details.events).toEqual({ status: 'up', transport: 'redis' });
    const mon = await waitFor('monitor ready', async () => ((await ready(monitor.httpPort)).status === 200 ? ready(monitor.httpPort) : null), 30_000);
    expect(Object.keys(mon.body.details).sort()).toEqual(['disk', 'memory', 'redis', 'sampler']);
    // The executor says it consumes tasks as its HTTP server starts listening.
    const ex = await waitFor('executor ready', () => ready(executor.httpPort).catch(() => null), 30_000);
    expect(ex.status).toBe(200);
    expect(ex.body.details).toMatchObject({ redis: { status: 'up' }, docker: { status: 'up' }, runtime: { status: 'up', runtime: 'docker' } });
    for (const port of [gateway.httpPort, monitor.httpPort, executor.httpPort]) {
      const live = await fetch(`http://127.0.0.1:${port}/health/live`);
      expect(live.status).toBe(200);
      expect((await json(live)).status).toBe('ok');
    }
  });

  it('a monitor whose free-disk floor is not met is not ready, and says why', async () => {
    const port = String(await import('../support/stack').then((m) => m.freePort()));
    const strict = await stack.start('monitor', { MONITOR_HTTP_PORT: port, HEALTH_MIN_FREE_DISK_MB: '999999999' });
    try {
      const res = await waitFor('a sampled strict monitor', async () => {
        const r = await fetch(`http://127.0.0.1:${port}/health/ready`);
        const body = await json(r);
        return body.details?.sampler?.status === 'up' ? { status: r.status, body } : null;
      }, 30_000);
      expect(res.status).toBe(503);
      expect(res.body.status).toBe('error');
      expect(res.body.error.disk.reason).toMatch(/MB free under .*below HEALTH_MIN_FREE_DISK_MB=999999999/);
      expect(res.body.details.memory.status).toBe('up');
    } finally {
      await stack.stop(strict);
    }
  });

  it('the token is made once with mode 0600, printed once, and required by everything but /health and /metrics', async () => {
    expect((await fs.stat(stack.env.DASHBOARD_TOKEN_FILE)).mode & 0o777).toBe(0o600);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(gateway.output().split(token).length - 1).toBe(1);
    expect(gateway.output()).toContain(`HiveMind dashboard: http://127.0.0.1:${gateway.httpPort}/`);

    for (const p of ['/api/status', '/api/tasks', '/api/settings', '/queues/api/queues', '/api/openapi.json', '/api/docs']) {
      expect((await get(p, {})).status).toBe(401);
      expect((await get(p, { Authorization: 'Bearer not-the-token' })).status).toBe(401);
      expect((await get(p)).status).toBe(200);
    }
    const openapi = await json(await get('/api/openapi.json'));
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/api/status', '/api/tasks', '/api/settings', '/api/pause', '/api/output', '/health/ready']));
    expect(openapi.paths['/api/settings'].patch.requestBody.content['application/json'].schema.properties).toHaveProperty('maxConcurrentTasks');
    const page = await get('/', { Accept: 'text/html' });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login');
    expect((await fetch(`${stack.gatewayHttp}/api/pause`, { method: 'POST' })).status).toBe(401);
    expect((await get('/health/live', {})).status).toBe(200);
    const metrics = await get('/metrics', {});
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('hivemind_tasks_accepted_total');
  });

  it('the login form sets an HttpOnly cookie that opens the dashboard; a wrong token is refused', async () => {
    const bad = await fetch(`${stack.gatewayHttp}/login`, { method: 'POST', body: new URLSearchParams({ token: 'wrong' }), redirect: 'manual' });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    const ok = await fetch(`${stack.gatewayHttp}/login`, { method: 'POST', body: new URLSearchParams({ token }), redirect: 'manual' });
    expect(ok.status).toBe(303);
    const cookie = ok.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const jar = cookie.split(';')[0];
    const page = await get('/', { Cookie: jar });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('HiveMind worker');
    expect((await get('/static/vendor/uplot/uPlot.iife.min.js', { Cookie: jar })).status).toBe(200);
    // Over plain HTTP the cookie cannot be Secure (the browser would never send it back).
    expect(cookie).not.toMatch(/;\s*Secure/i);
  });

  it('the login cookie is Secure when the login came over TLS (a TLS proxy in front says so)', async () => {
    const proxies: Array<Record<string, string>> = [{ 'X-Forwarded-Proto': 'https' }, { Forwarded: 'for=192.0.2.7;proto=https' }];
    for (const headers of proxies) {
      const ok = await fetch(`${stack.gatewayHttp}/login`, { method: 'POST', headers, body: new URLSearchParams({ token }), redirect: 'manual' });
      expect(ok.status).toBe(303);
      const cookie = ok.headers.get('set-cookie') ?? '';
      expect(cookie).toMatch(/;\s*Secure/i);
      expect(cookie).toMatch(/HttpOnly/i);
      const out = await fetch(`${stack.gatewayHttp}/logout`, { method: 'POST', headers: { ...headers, Cookie: cookie.split(';')[0] }, redirect: 'manual' });
      expect(out.headers.get('set-cookie') ?? '').toMatch(/;\s*Secure/i);
    }
  });

  it('/metrics wants the dashboard token from a service whose HTTP is not bound to loopback', async () => {
    const port = String(await import('../support/stack').then((m) => m.freePort()));
    const exposed = await stack.start('monitor', { MONITOR_HTTP_PORT: port, HTTP_HOST: '0.0.0.0' });
    try {
      await waitFor('the exposed monitor answering', () => fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.ok || null).catch(() => null), 30_000);
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
      expect((await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { Authorization: 'Bearer not-the-token' } })).status).toBe(401);
      const ok = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: auth() });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('service="monitor"');
    } finally {
      await stack.stop(exposed);
    }
  });

  it('bad API input gets a 400 that names the field', async () => {
    const patch = (body: unknown) =>
      fetch(`${stack.gatewayHttp}/api/settings`, { method: 'PATCH', headers: { ...auth(), 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    let res = await patch({ maxConcurrentTasks: 0 });
    expect(res.status).toBe(400);
    expect(await json(res)).toMatchObject({ field: 'maxConcurrentTasks' });
    res = await patch({ ownerReservedCores: 10_000 });
    expect(await json(res)).toMatchObject({ field: 'ownerReservedCores' });
    res = await patch({ maxConcurrentTask: 3 });
    expect(res.status).toBe(400);
    expect(await json(res)).toMatchObject({ field: 'maxConcurrentTask' });
    res = await get('/api/tasks?limit=0');
    expect(await json(res)).toMatchObject({ statusCode: 400, field: 'limit' });
    res = await get('/api/monitor/history?minutes=abc');
    expect(await json(res)).toMatchObject({ statusCode: 400, field: 'minutes' });
    res = await get('/api/tasks/bad%20id/logs');
    expect(await json(res)).toMatchObject({ statusCode: 400, field: 'taskId' });

    res = await patch({ maxConcurrentTasks: 3 });
    expect(res.status).toBe(200);
    expect((await json(await get('/api/settings'))).settings.maxConcurrentTasks).toBe(3);
    expect((await fetch(`${stack.gatewayHttp}/api/settings/reset`, { method: 'POST', headers: auth() })).status).toBe(200);
  });

  it('a task: its output streams live over SSE, it is listed while running, then kept in the history with its CPT estimate, and counted in /metrics', async () => {
    // Follow the live stream before the task exists.
    const sse = await followStream(`${stack.gatewayHttp}/api/output?task=dash-1`, auth());
    expect(sse.type).toContain('text/event-stream');

    expect((await uploadTask(pool, 'dash-1', await tickerTask('dash-1', 5))).success).toBe(true);
    const running = await waitFor('dash-1 listed as running', async () => {
      const t = await json(await get('/api/tasks'));
      return t.running.find((r: { taskId: string }) => r.taskId === 'dash-1');
    });
    expect(running.executorId).toBeTruthy();
    await waitFor('live output over SSE', async () => /event: output\ndata: .*dash-1 tick 3/.test(sse.text()));
    expect(sse.text()).not.toMatch(/"taskId":"(?!dash-1)/);
    const liveLog = await (await get('/api/tasks/dash-1/logs')).text();
    expect(liveLog).toContain('dash-1 tick 0');
    await sse.close();

    await waitForStatus(pool, 'dash-1', ['COMPLETED']);
    const entry = await waitFor('dash-1 in the history', async () => {
      const res = await get('/api/tasks/dash-1');
      return res.status === 200 ? json(res) : null;
    });
    expect(entry).toMatchObject({ taskId: 'dash-1', status: 'Success', reason: 'exited with code 0', exitCode: 0 });
    expect(entry.durationSeconds).toBeGreaterThan(4);
    expect(entry.resultBytes).toBeGreaterThan(100);
    expect(entry.usageSamples).toBeGreaterThan(0);
    expect(entry.cpt.total).toBeGreaterThanOrEqual(1);
    expect(entry.cpt.inputs.durationSeconds).toBeCloseTo(entry.durationSeconds, 3);
    expect(entry.cptExplained).toContain('the Node Pool decides the real credit');
    expect(entry.logsTail).toContain('dash-1 tick 10');
    expect(await (await get('/api/tasks/dash-1/logs')).text()).toContain('dash-1 tick 10');

    const status = await json(await get('/api/status'));
    expect(status.cpt).toMatchObject({ balance: expect.any(Number), estimatedTasks: 1, estimatedTotal: entry.cpt.total });
    expect(status.cpt.note).toMatch(/Node Pool decides the real credit/);
    const history = await json(await get('/api/monitor/history?minutes=5'));
    expect(history.samples.length).toBeGreaterThan(3);

    const metrics = await (await get('/metrics', {})).text();
    // One sample line with these labels (in any order) and this value.
    const sample = (name: string, labels: Record<string, string>, value: RegExp | number) =>
      metrics.split('\n').some((line) => {
        const m = line.match(/^([a-z_]+)\{([^}]*)\} (\S+)$/);
        if (!m || m[1] !== name) return false;
        const got = Object.fromEntries(m[2].split(',').map((kv) => kv.split('=')).map(([k, v]) => [k, v.replace(/"/g, '')]));
        const labelsOk = Object.entries({ service: 'gateway', ...labels }).every(([k, v]) => got[k] === v);
        return labelsOk && (typeof value === 'number' ? Number(m[3]) === value : value.test(m[3]));
      });
    expect(sample('hivemind_tasks_accepted_total', {}, 1)).toBe(true);
    expect(sample('hivemind_tasks_finished_total', { outcome: 'success' }, 1)).toBe(true);
    expect(sample('hivemind_task_duration_seconds_count', { outcome: 'success' }, 1)).toBe(true);
    expect(sample('hivemind_task_queue_wait_seconds_count', {}, 1)).toBe(true);
    expect(sample('hivemind_result_upload_attempts_total', {}, 1)).toBe(true);
    expect(sample('hivemind_result_upload_failures_total', {}, 0)).toBe(true);
    expect(sample('hivemind_queue_jobs', { queue: 'tasks', state: 'wait' }, 0)).toBe(true);
    expect(sample('hivemind_tasks_running', {}, 0)).toBe(true);
    expect(sample('hivemind_host_cpu_percent', {}, /^[\d.]+$/)).toBe(true);
    expect(sample('process_cpu_user_seconds_total', {}, /^[\d.e-]+$/)).toBe(true);
    const exMetrics = await (await fetch(`http://127.0.0.1:${executor.httpPort}/metrics`)).text();
    expect(exMetrics).toMatch(/process_resident_memory_bytes\{service="executor"\}/);
  });

  it('counts refusals by reason, and shows the owner state when the owner-first watcher publishes one', async () => {
    const worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(8 << 20));
    try {
      const res = await unary(worker, worker.executeTask, executeRequest({ task_id: 'not-a-zip', task_zip: Buffer.from('hello') }));
      expect(res.success).toBe(false);
      const bad = await unary(worker, worker.executeTask, executeRequest({ task_id: 'bad id!', task_zip: Buffer.from('hello') }));
      expect(bad.success).toBe(false);
    } finally {
      worker.close();
    }
    const metrics = await (await get('/metrics', {})).text();
    expect(metrics).toMatch(/hivemind_tasks_refused_total\{[^}]*reason="invalid_zip"[^}]*\} 1\n/);
    expect(metrics).toMatch(/hivemind_tasks_refused_total\{[^}]*reason="invalid_task_id"[^}]*\} 1\n/);

    // The monitor's owner-first watcher publishes the owner state every second; the API shows it as it is.
    const owner = await waitFor('the owner state in the API', async () => (await json(await get('/api/status'))).ownerState, 15_000);
    expect(owner).toMatchObject({ busy: false, frozenTasks: [], scheduleOpen: true, reason: expect.stringContaining('busy-owner detection is off') });
  });

  it('in a browser: logs in, sees a running task and its live output, pauses the node', async () => {
    let browser: Browser | null = null;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
      const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
      await page.goto(`${stack.gatewayHttp}/`);
      await page.waitForURL(/\/login$/);
      await page.fill('#token', token);
      await page.click('button[type=submit]');
      await page.waitForURL(`${stack.gatewayHttp}/`);
      await page.waitForSelector('#pool-state.ok', { timeout: 20_000 });

      expect((await uploadTask(pool, 'browser-1', await tickerTask('browser-1', 12))).success).toBe(true);
      await page.waitForSelector('#running-tasks tr[data-task-id="browser-1"]', { timeout: 60_000 });
      await page.waitForFunction(`/browser-1 tick \\d+/.test(document.getElementById('live-output').textContent)`, null, { timeout: 30_000 });
      // The output keeps arriving while we watch: a later tick than the first one seen.
      const first = Number((await page.textContent('#live-output'))!.match(/browser-1 tick (\d+)/g)!.pop()!.split(' ').pop());
      await page.waitForFunction(`/browser-1 tick ${first + 3}\\b/.test(document.getElementById('live-output').textContent)`, null, { timeout: 30_000 });

      // Settings: a change takes effect at once; a bad one is refused with the field named.
      await page.fill('#settings-form input[name=maxConcurrentTasks]', '3');
      await page.click('#settings-form button[type=submit]');
      await page.waitForSelector('#settings-msg.ok', { timeout: 10_000 });
      expect((await json(await get('/api/settings'))).settings.maxConcurrentTasks).toBe(3);
      // The header says what the node does in words, the status the pool is told beside it.
      await page.waitForSelector('#node-status:text("Running 1 of 3 tasks, room for more")', { timeout: 10_000 });
      expect(await page.textContent('#pool-status')).toBe('pool sees: Idle');
      await page.fill('#settings-form input[name=ownerReservedCores]', '4096');
      await page.click('#settings-form button[type=submit]');
      await page.waitForSelector('#settings-msg.error', { timeout: 10_000 });
      expect(await page.textContent('#settings-msg')).toMatch(/^ownerReservedCores: must leave some of the/);
      expect((await json(await get('/api/settings'))).settings.ownerReservedCores).toBe(0);

      await page.click('#pause-btn');
      await page.waitForSelector('#node-status:text("Paused")', { timeout: 10_000 });
      expect(await page.textContent('#accepting')).toBe('no (paused)');
      const status = await json(await get('/api/status'));
      expect(status).toMatchObject({ paused: true, status: 'Paused' });
      // The owner-first watcher's state gets its own panel.
      await page.waitForSelector('#owner:not([hidden]) dd:has-text("busy-owner detection is off")', { timeout: 10_000 });
      // Figures are rounded for people: "12 %" or "3.4 %", never sixteen digits.
      const ownerCpu = await page.textContent('#owner-facts dt:text-is("Owner CPU") + dd');
      expect(ownerCpu).toMatch(/^(\d+|\d\.\d) %$/);
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

      await page.click('#resume-btn');
      await page.waitForFunction(`document.getElementById('node-status').textContent !== 'Paused'`, null, { timeout: 10_000 });
      expect((await json(await get('/api/status'))).paused).toBe(false);
      await waitForStatus(pool, 'browser-1', ['COMPLETED']);
    } finally {
      await browser?.close();
    }
  });

  it('the token never reaches the log, even at debug level with it in headers and cookies', async () => {
    await stack.stop(gateway);
    gateway = await stack.start('gateway', { LOG_LEVEL: 'debug' });
    expect(gateway.output()).not.toContain('HiveMind dashboard:'); // printed at creation only
    for (const p of ['/api/status', '/api/tasks', '/queues/api/queues', '/nope']) {
      await get(p);
      await get(p, { Cookie: `hivemind_dashboard=${token}` });
    }
    await fetch(`${stack.gatewayHttp}/login`, { method: 'POST', body: new URLSearchParams({ token }), redirect: 'manual' });
    await new Promise((r) => setTimeout(r, 500));
    expect(gateway.output()).toMatch(/"url":"\/api\/status"/); // requests are logged at debug...
    expect(gateway.output()).toContain('[redacted]'); // ...with their credentials blanked
    expect(gateway.output()).not.toContain(token);
  });

  it('the gateway is not ready while the pool is away, and says why', async () => {
    const devpool = stack.services.find((s) => s.name === 'devpool')!;
    await stack.stop(devpool);
    const res = await waitFor('gateway not ready', async () => {
      const r = await fetch(`${stack.gatewayHttp}/health/ready`);
      return r.status === 503 ? json(r) : null;
    }, 30_000);
    expect(res.error.pool.status).toBe('down');
    expect(res.error.pool.reason).toMatch(/heartbeat the Node Pool took was \d+ s ago|not logged in/);
    expect(res.info.redis.status).toBe('up');
    expect((await fetch(`${stack.gatewayHttp}/health/live`)).status).toBe(200);
  });
});
