import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { chromium, Browser, Page } from 'playwright-core';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import type { NodeStateConnection } from '@hivemind/shared/state/node-state';
import type { HostSample } from '@hivemind/shared/state/monitor-samples';
import { nodeStateOf } from '../support/node-state';
import { ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { makeZip } from '../support/zips';
import { ROOT, RunningService, Stack, waitFor } from '../support/stack';

const CHROMIUM = '/usr/bin/chromium';
const PUBLIC = path.join(ROOT, 'apps/gateway/public');

/** How the dashboard writes a figure (fmtNum in dashboard-util.js). */
const fmtNum = (n: number) => String(Math.abs(n) >= 10 ? Math.round(n) : Math.round(n * 10) / 10);

/** The samples the monitor took after `since`, oldest first, as it wrote them to Redis. */
async function samplesAfter(state: NodeStateConnection, since: number, count: number): Promise<HostSample[]> {
  return waitFor(`${count} host samples`, async () => {
    const got = (await state.monitor.history()).filter((s) => s.at > since);
    return got.length >= count ? got.slice(0, count) : null;
  }, 30_000);
}

const launch = () => chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });

/** A dashboard page, logged in with the token, following the event stream, with a first sample drawn. */
async function openDashboard(browser: Browser, gatewayHttp: string, token: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${gatewayHttp}/login`);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForURL(`${gatewayHttp}/`);
  await page.waitForSelector('#live-state.ok', { timeout: 20_000 });
  await page.waitForSelector('#latest-sample[data-at]', { timeout: 20_000 });
  return page;
}

/**
 * The dashboard follows the node live: host samples and task transitions reach an open
 * page over the gateway's event stream (GET /api/events), with no polling; the API
 * only draws the starting state.
 */
describe('the live dashboard', () => {
  let stack: Stack;
  let pool: PoolClient;
  let state: NodeStateConnection;
  let token: string;
  let gateway: RunningService;

  beforeAll(async () => {
    // MONITOR_INTERVAL is 1 s in test stacks.
    stack = await Stack.create('live');
    await stack.start('devpool');
    await stack.start('monitor');
    await stack.start('executor');
    gateway = await stack.start('gateway');
    token = (await fs.readFile(stack.env.DASHBOARD_TOKEN_FILE, 'utf8')).trim();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
    state = nodeStateOf(stack);
  });

  afterAll(async () => {
    pool?.close();
    await state?.close();
    await stack?.stopAll();
  });

  it('has no polling loop: no setInterval or setTimeout in the dashboard scripts', async () => {
    const scripts = (await fs.readdir(PUBLIC)).filter((f) => f.endsWith('.js'));
    expect(scripts).toContain('dashboard.js');
    for (const f of scripts) expect({ file: f, timers: (await fs.readFile(path.join(PUBLIC, f), 'utf8')).match(/\bset(Interval|Timeout)\b/g) }).toEqual({ file: f, timers: null });
  });

  it('GET /api/events streams Server-Sent Events behind the dashboard token', async () => {
    expect((await fetch(`${stack.gatewayHttp}/api/events`)).status).toBe(401);
    const abort = new AbortController();
    const res = await fetch(`${stack.gatewayHttp}/api/events`, { headers: { Authorization: `Bearer ${token}` }, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    abort.abort();
  });

  it('in a browser: each host sample shows within 2 s of the monitor taking it, and a task row appears and turns finished, from the events alone', async () => {
    let browser: Browser | null = null;
    try {
      browser = await launch();
      const page = await openDashboard(browser, stack.gatewayHttp, token);
      await page.waitForSelector('#running-tasks tr.empty', { timeout: 20_000 });

      // From here on the API answers nothing the page draws: what changes came over the event stream.
      await page.route(/\/api\/(status|tasks|monitor\/history)(\/|\?|$)/, (route) => route.abort());
      // When (page clock, the same host's as the monitor's) and what the page showed of each sample.
      await page.evaluate(`
        window.seen = {};
        window.sameDocument = true;
        const node = document.getElementById('latest-sample');
        new MutationObserver(() => {
          const at = node.dataset.at;
          if (at && !(at in window.seen)) window.seen[at] = { t: Date.now(), text: node.textContent };
        }).observe(node, { attributes: true, childList: true, characterData: true, subtree: true });
      `);
      const since = Date.now();
      for (const s of await samplesAfter(state, since, 3)) {
        await page.waitForFunction(`window.seen[${JSON.stringify(String(s.at))}]`, null, { timeout: 10_000 });
        const shown = (await page.evaluate(`window.seen[${JSON.stringify(String(s.at))}]`)) as { t: number; text: string };
        expect(shown.t - s.at).toBeLessThan(2000);
        expect(shown.text).toContain(`CPU ${fmtNum(s.cpuPercent)} %, memory ${fmtNum(s.memoryPercent)} %, disk ${fmtNum(s.diskPercent)} %`);
      }

      const zip = await makeZip([{ name: 'run.py', content: 'import time\nprint("live-1 running", flush=True)\ntime.sleep(3)\nopen("result/out.txt", "w").write("done")\n' }]);
      expect((await uploadTask(pool, 'live-1', zip)).success).toBe(true);
      await page.waitForSelector('#running-tasks tr[data-task-id="live-1"]', { timeout: 60_000 });
      await page.waitForSelector('#history-tasks tr[data-task-id="live-1"] td.status-Success', { timeout: 60_000 });
      expect(await page.$('#running-tasks tr[data-task-id="live-1"]')).toBeNull();
      expect(await page.evaluate('window.sameDocument')).toBe(true);
      await waitForStatus(pool, 'live-1', ['COMPLETED']);
    } finally {
      await browser?.close();
    }
  });

  it('in a browser: after the gateway restarts, the page reconnects and draws the starting state again, once, without a reload', async () => {
    let browser: Browser | null = null;
    try {
      browser = await launch();
      const page = await openDashboard(browser, stack.gatewayHttp, token);
      await page.evaluate('window.sameDocument = true');
      // The monitor's history is asked for only to draw the starting state.
      let historyAsked = 0;
      page.on('request', (r) => void (/\/api\/monitor\/history/.test(r.url()) && historyAsked++));

      await stack.stop(gateway);
      await page.waitForSelector('#live-state.bad', { timeout: 20_000 });
      gateway = await stack.start('gateway');
      await page.waitForSelector('#live-state.ok', { timeout: 30_000 });
      await waitFor('the starting state asked for again', async () => historyAsked >= 1, 10_000);
      // Samples keep coming over the new stream; none asks for the history again.
      const since = Date.now();
      const [, second] = await samplesAfter(state, since, 2);
      await page.waitForFunction(`Number(document.getElementById('latest-sample').dataset.at) >= ${second.at}`, null, { timeout: 10_000 });
      expect(historyAsked).toBe(1);
      expect(await page.evaluate('window.sameDocument')).toBe(true);
    } finally {
      await browser?.close();
    }
  });
});
