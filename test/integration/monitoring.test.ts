import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ROOT, Stack, waitFor } from '../support/stack';

/**
 * deploy/grafana/hivemind-worker.json and deploy/prometheus/alerts.yml name only
 * metrics a running gateway exports: each name is looked up in a live scrape of its
 * /metrics (with the monitor publishing host samples). Needs `npm run build`.
 */

/** Metric names of the exposition: its # TYPE lines, with a histogram's series names. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m[1] + s);
    if (m[2] === 'summary') for (const s of ['_sum', '_count']) names.add(m[1] + s);
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers that are neither functions, keywords, labels nor strings. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  // A word followed by "(" is a function or an aggregation.
  const words = bare.match(/(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*(?![A-Za-z0-9_:])(?!\s*\()/g) ?? [];
  const notMetrics = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'up']);
  return words.filter((w) => !notMetrics.has(w.toLowerCase()));
}

function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(path.join(ROOT, 'deploy/grafana/hivemind-worker.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[]; templating: { list: { definition?: string }[] } };
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  for (const v of dash.templating.list) {
    const m = v.definition && /label_values\(([a-z_:]+)/.exec(v.definition);
    if (m) exprs.push(m[1]);
  }
  return exprs;
}

function alertExprs(): { alert: string; expr: string }[] {
  const doc = parse(readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

describe('Grafana dashboard and Prometheus alert rules', () => {
  let stack: Stack;
  afterAll(() => stack?.destroy());

  it('the expressions are read as the metrics they name', () => {
    expect(metricNames('sum by (instance) (increase(hivemind_tasks_finished_total{outcome=~"failed|timed_out"}[1h])) / sum(rate(x_total[5m])) > 0.5 and up{job="a"} == 0')).toEqual([
      'hivemind_tasks_finished_total',
      'x_total',
    ]);
    expect(metricNames('histogram_quantile(0.95, sum by (le) (rate(hivemind_task_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))')).toEqual([
      'hivemind_task_duration_seconds_bucket',
    ]);
    expect(metricNames('time() - hivemind_pool_last_heartbeat_timestamp_seconds > 120')).toEqual(['hivemind_pool_last_heartbeat_timestamp_seconds']);
  });

  it('every metric they name is in a running gateway’s /metrics', async () => {
    stack = await Stack.create('monitoring');
    await stack.start('devpool');
    await stack.start('monitor');
    await stack.start('gateway');
    // The host gauges appear once the monitor has published a sample.
    const text = await waitFor('host gauges on /metrics', async () => {
      const t = await (await fetch(`${stack.gatewayHttp}/metrics`)).text();
      return /^hivemind_host_disk_free_bytes(\{[^}]*\})? \d/m.test(t) && t;
    });
    const names = exported(text);

    const alerts = alertExprs();
    const dashboard = dashboardExprs();
    const wanted = new Set([...alerts.flatMap((a) => metricNames(a.expr)), ...dashboard.flatMap(metricNames)]);
    // What the rules must cover: a node not heartbeating, tasks failing, uploads failing or refused, disk low.
    for (const m of ['hivemind_pool_last_heartbeat_timestamp_seconds', 'hivemind_tasks_finished_total', 'hivemind_result_upload_failures_total', 'hivemind_result_uploads_refused_total', 'hivemind_host_disk_free_bytes']) {
      expect(alerts.some((a) => metricNames(a.expr).includes(m))).toBe(true);
    }
    expect(wanted.size).toBeGreaterThan(20);
    expect([...wanted].filter((m) => !names.has(m))).toEqual([]);
  });
});
