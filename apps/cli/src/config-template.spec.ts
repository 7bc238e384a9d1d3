import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { parseEnv } from '@hivemind/shared/config/env-parsers';
import { loadWorkerConfig, workerEnvSchema } from '@hivemind/shared/config/worker-config';
import { WORKER_VARIABLES } from './config-reference';
import { literalDefault, renderConfigTemplate } from './config-template';
import { parseConfigFile, resolveSettings, SETTINGS } from './settings';

/** The generated file with every "# key: value" line turned into a setting. */
const uncommentAll = (text: string) => {
  const keys = new Set<string>([...SETTINGS.map((s) => s.name), ...WORKER_VARIABLES.flatMap((w) => w.names)]);
  return text.replace(/^(\s*)# ([A-Za-z][A-Za-z0-9_]*):(.*)$/gm, (line, indent: string, key: string, rest: string) => (keys.has(key) ? `${indent}${key}:${rest}` : line));
};

describe('hivemind-worker init: the config file', () => {
  // After changing the README table: node scripts/gen-config-reference.mjs
  it('lists the same variables, defaults and meanings as the README table', () => {
    const check = spawnSync(process.execPath, [path.resolve(__dirname, '../../../scripts/gen-config-reference.mjs'), '--check'], { encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('holds every variable of the worker config schema, and nothing else', () => {
    const file = parseConfigFile(uncommentAll(renderConfigTemplate()), 'all.yaml');
    const listed = new Set([...Object.keys(file.env ?? {}), ...SETTINGS.map((s) => s.env)]);
    // Keys left without a value are unset: read the key lines themselves too.
    for (const m of renderConfigTemplate().matchAll(/^ {2}# ([A-Z][A-Z0-9_]*):/gm)) listed.add(m[1]);
    const schema = Object.keys(workerEnvSchema.shape);
    expect(schema.filter((k) => !listed.has(k))).toEqual([]);
    const extra = WORKER_VARIABLES.flatMap((w) => w.names).filter((n) => !schema.includes(n));
    expect(extra).toEqual([]);
  });

  it("writes each default the README gives as a value, and it is the schema's default", () => {
    const defaults = parseEnv(workerEnvSchema, {}) as Record<string, unknown>;
    const checked: string[] = [];
    for (const row of WORKER_VARIABLES) {
      const literal = literalDefault(row.dflt);
      if (literal === null) continue;
      for (const name of row.names) {
        expect({ name, value: (parseEnv(workerEnvSchema, { [name]: literal }) as Record<string, unknown>)[name] }).toEqual({ name, value: defaults[name] });
        checked.push(name);
      }
    }
    expect(checked).toEqual(expect.arrayContaining(['TASK_TIMEOUT', 'REDIS_URL', 'TASK_USER', 'TASK_MIN_CPUS', 'POOL_TLS']));
  });

  it('as written sets nothing but what init was given; with every line uncommented it starts a worker at the defaults', () => {
    expect(parseConfigFile(renderConfigTemplate(), 'plain.yaml')).toEqual({});
    const given = parseConfigFile(renderConfigTemplate({ nodeId: 'alice', nodePool: 'pool.example.org:50051', maxTasks: 4 }), 'given.yaml');
    expect(given).toEqual({ nodeId: 'alice', nodePool: 'pool.example.org:50051', maxTasks: 4 });

    const all = parseConfigFile(uncommentAll(renderConfigTemplate()), 'all.yaml');
    const r = resolveSettings({}, {}, all);
    expect(r.sources.maxTasks).toBe('config');
    const config = loadWorkerConfig({ ...r.env, NODE_ID: 'alice' });
    const defaults = loadWorkerConfig({ NODE_ID: 'alice' });
    expect(config).toEqual(defaults);
  });

  it('every comment line fits 100 columns unless one word is longer', () => {
    for (const line of renderConfigTemplate().split('\n')) {
      if (line.length > 100) expect(line.trim().split(' ')).toHaveLength(2);
    }
  });
});
