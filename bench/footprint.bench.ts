/**
 * 4. Idle footprint: CPU and RSS of each service over a minute of idling while it heartbeats.
 * 8. Monitor cost: CPU time per host sample (a fast-sampling monitor against a slow one).
 * 9. Heartbeat under load: the intervals between ReportStatus calls the pool receives
 *    while tasks saturate every core.
 */
import * as os from 'node:os';
import { ownerClient } from '../test/support/pool';
import { ROOT, RunningService, Stack } from '../test/support/stack';
import { makeZip } from '../test/support/zips';
import { BENCH_ENV, gatewayClient, mb, procStat, push } from './lib/harness';
import { machine, writeSection } from './lib/report';
import { summarize } from './lib/stats';

const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 60);
const MONITOR_S = Number(process.env.BENCH_MONITOR_S ?? 30);
const LOAD_S = Number(process.env.BENCH_LOAD_S ?? 60);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 30);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function cpuAndRss(services: RunningService[], seconds: number) {
  const before = await Promise.all(services.map((s) => procStat(s.proc.pid!)));
  const t0 = performance.now();
  const rss: number[][] = services.map(() => []);
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    await sleep(1000);
    const now = await Promise.all(services.map((s) => procStat(s.proc.pid!)));
    now.forEach((st, i) => rss[i].push(st.rssBytes));
  }
  const after = await Promise.all(services.map((s) => procStat(s.proc.pid!)));
  const wallMs = performance.now() - t0;
  return services.map((s, i) => ({
    name: s.name,
    cpuPercent: (100 * (after[i].cpuMs - before[i].cpuMs)) / wallMs,
    rss: summarize(rss[i]),
  }));
}

async function idle(): Promise<string[]> {
  // Default intervals: this is the footprint a volunteer sees.
  const stack = await Stack.create('bench-idle', { ...BENCH_ENV, HEARTBEAT_INTERVAL: '10', MONITOR_INTERVAL: '5' });
  try {
    await stack.startAll();
    // The first half-minute after start is the JIT compiling and modules settling: not what
    // a volunteer's machine sees for hours afterwards.
    await sleep(WARMUP_S * 1000);
    const workerServices = stack.services.filter((s) => s.name !== 'devpool');
    const res = await cpuAndRss(workerServices, IDLE_S);
    const totalCpu = res.reduce((a, r) => a + r.cpuPercent, 0);
    const totalRss = res.reduce((a, r) => a + r.rss.max, 0);
    return [
      '## 4. Idle footprint',
      '',
      `Each worker service idling for ${IDLE_S} s with default intervals (heartbeat 10 s, monitor 5 s),`,
      `registered with devpool, measured after ${WARMUP_S} s of warm-up. CPU is the process's user + system`,
      'time (all threads) over the wall time.',
      '',
      '| service | CPU (% of one core) | RSS median | RSS max |',
      '|---|---|---|---|',
      ...res.map((r) => `| ${r.name} | ${r.cpuPercent.toFixed(2)} % | ${mb(r.rss.median)} | ${mb(r.rss.max)} |`),
      `| **total** | **${totalCpu.toFixed(2)} %** | | **${mb(totalRss)}** |`,
      '',
      `Target < 1 % of one core and < 350 MB in total: ${totalCpu < 1 && totalRss < 350 * 1024 ** 2 ? 'met' : '**missed**'}.`,
    ];
  } finally {
    await stack.destroy();
  }
}

async function monitorCost(): Promise<string[]> {
  const fast = await Stack.create('bench-mon-fast', { ...BENCH_ENV, MONITOR_INTERVAL: '0.5' });
  const slow = await Stack.create('bench-mon-slow', { ...BENCH_ENV, MONITOR_INTERVAL: '30' });
  try {
    const [f, s] = [await fast.start('monitor'), await slow.start('monitor')];
    await sleep(2000);
    const [f0, s0] = await Promise.all([procStat(f.proc.pid!), procStat(s.proc.pid!)]);
    await sleep(MONITOR_S * 1000);
    const [f1, s1] = await Promise.all([procStat(f.proc.pid!), procStat(s.proc.pid!)]);
    const samples = MONITOR_S / 0.5 - MONITOR_S / 30;
    const perSample = (f1.cpuMs - f0.cpuMs - (s1.cpuMs - s0.cpuMs)) / samples;
    return [
      '## 8. Monitor cost',
      '',
      `A monitor sampling every 0.5 s against one sampling every 30 s, side by side for ${MONITOR_S} s;`,
      'the difference in CPU time over the difference in samples is the cost of one sample',
      '(CPU, memory, disk, network and GPU probes, written to Redis with its history).',
      '',
      `**${perSample.toFixed(2)} ms of CPU per sample** (fast: ${(f1.cpuMs - f0.cpuMs).toFixed(0)} ms, slow: ${(s1.cpuMs - s0.cpuMs).toFixed(0)} ms).` +
        ` At the default 5 s interval that is ${(perSample / 50).toFixed(3)} % of one core.`,
    ];
  } finally {
    await fast.destroy();
    await slow.destroy();
  }
}

async function heartbeatUnderLoad(): Promise<string[]> {
  const cores = os.cpus().length;
  const stack = await Stack.create('bench-hb', {
    ...BENCH_ENV,
    LOG_LEVEL: 'debug',
    HEARTBEAT_INTERVAL: '10',
    DEVPOOL_DISPATCH_INTERVAL: '100000',
    MAX_CONCURRENT_TASKS: String(cores),
    TASK_DEFAULT_CPUS: '1',
  });
  const pool = ownerClient(stack.devpoolAddress);
  const worker = gatewayClient(stack.gatewayAddress);
  try {
    await stack.startAll();
    const spin = await makeZip([{ name: 'run.py', content: `import time\nend = time.time() + ${LOAD_S + 10}\nwhile time.time() < end:\n    pass\n` }]);
    for (let i = 0; i < cores; i++) await push(pool, worker, `spin-${i}`, spin);
    const devpool = stack.services.find((s) => s.name === 'devpool')!;
    const mark = devpool.output().length;
    await sleep(LOAD_S * 1000);
    const times = devpool
      .output()
      .slice(mark)
      .split('\n')
      .filter((l) => /"msg":"node status (reported|changed)"/.test(l))
      .map((l) => Number(/"time":(\d+)/.exec(l)?.[1]));
    const gaps = times.slice(1).map((t, i) => (t - times[i]) / 1000);
    const s = summarize(gaps);
    return [
      '## 9. Heartbeat under load',
      '',
      `${cores} tasks spinning on all ${cores} cores for ${LOAD_S} s; devpool timestamps every ReportStatus it`,
      'receives (HEARTBEAT_INTERVAL 10 s, plus the reports a status change triggers).',
      '',
      `${gaps.length} intervals: median ${s.median.toFixed(2)} s, max **${s.max.toFixed(2)} s** (the pool's liveness limit is 60 s).`,
    ];
  } finally {
    pool.close();
    worker.close();
    await stack.destroy();
  }
}

async function main(): Promise<void> {
  const body = [...(await idle()), '', ...(await monitorCost()), '', ...(await heartbeatUnderLoad()), '', `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}.`].join('\n');
  await writeSection(ROOT, 'footprint', body);
  console.log(body);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
