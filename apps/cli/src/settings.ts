import { isMap, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';

/**
 * The hivemind-worker command's settings and where each comes from.
 *
 * Precedence, highest first: command-line flag > environment variable > config file >
 * default. Each setting maps onto the worker's environment variables (the services read
 * nothing else), so the command builds the environment and starts the services with it.
 */

export type SettingName = 'nodeId' | 'nodePool' | 'maxTasks' | 'cpuOnly' | 'debug' | 'logFile';
export type Source = 'flag' | 'env' | 'config' | 'default';

interface SettingSpec {
  name: SettingName;
  /** Long flag, without the dashes. */
  flag: string;
  /** Environment variable that sets it. */
  env: string;
  kind: 'string' | 'int' | 'bool';
  /** Default shown in --help; undefined: unset. */
  dflt?: string | number | boolean;
  describe: string;
  /** Worker environment variables this setting turns into. */
  toEnv: (value: string | number | boolean) => Record<string, string>;
}

export const SETTINGS: readonly SettingSpec[] = [
  { name: 'nodeId', flag: 'node-id', env: 'NODE_ID', kind: 'string', describe: 'your Node Pool username (the node registers under it)', toEnv: (v) => ({ NODE_ID: String(v) }) },
  {
    name: 'nodePool',
    flag: 'node-pool',
    env: 'NODE_POOL_ADDRESS',
    kind: 'string',
    dflt: 'localhost:50051',
    describe: "the Node Pool's gRPC address, host:port",
    toEnv: (v) => ({ NODE_POOL_ADDRESS: String(v) }),
  },
  {
    name: 'maxTasks',
    flag: 'max-tasks',
    env: 'MAX_CONCURRENT_TASKS',
    kind: 'int',
    dflt: 2,
    describe: 'tasks the node holds at once (1-256)',
    toEnv: (v) => ({ MAX_CONCURRENT_TASKS: String(v) }),
  },
  { name: 'cpuOnly', flag: 'cpu-only', env: 'CPU_ONLY', kind: 'bool', dflt: false, describe: 'offer no GPU and do not probe for one', toEnv: (v) => ({ CPU_ONLY: String(v) }) },
  { name: 'debug', flag: 'debug', env: 'HIVEMIND_DEBUG', kind: 'bool', dflt: false, describe: 'log at debug level (LOG_LEVEL=debug)', toEnv: (v): Record<string, string> => (v ? { LOG_LEVEL: 'debug' } : {}) },
  { name: 'logFile', flag: 'log-file', env: 'HIVEMIND_LOG_FILE', kind: 'string', describe: "also append every service's log to this file", toEnv: () => ({}) },
];

/** A key left without a value (`key:`) in the config file is unset. */
const orUnset = <T extends z.ZodTypeAny>(t: T) => t.nullable().transform((v) => v ?? undefined);

/** The config file (YAML): the settings above by name, plus any other worker variable under "env". */
const configFileSchema = z
  .object({
    nodeId: orUnset(z.string().min(1)),
    nodePool: orUnset(z.string().min(1)),
    maxTasks: orUnset(z.number().int().min(1).max(256)),
    cpuOnly: orUnset(z.boolean()),
    debug: orUnset(z.boolean()),
    logFile: orUnset(z.string().min(1)),
    env: orUnset(
      z
        .record(z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'expected an upper-case variable name'), orUnset(z.union([z.string(), z.number(), z.boolean()], { errorMap: () => ({ message: 'expected a string, number or true/false' }) })))
        .transform((r) => Object.fromEntries(Object.entries(r).filter((e): e is [string, string | number | boolean] => e[1] !== undefined))),
    ),
  })
  .partial()
  .strict();

export type ConfigFile = z.infer<typeof configFileSchema>;

export class SettingsError extends Error {}

/**
 * Parses and checks a config file's text (YAML; a JSON file is YAML too). The error names
 * the file, the key and its line.
 */
export function parseConfigFile(text: string, file: string): ConfigFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return '';
    const { line, col } = lines.linePos(offset);
    return ` (line ${line}, column ${col})`;
  };
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new SettingsError(`config file ${file}: not valid YAML${at(e.pos[0])}: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const r = configFileSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    let keyPath: (string | number)[] = issue.path;
    let what: string = issue.message;
    if (issue.code === 'unrecognized_keys') {
      keyPath = [...issue.path, issue.keys[0]];
      what = `unknown key(s) ${issue.keys.join(', ')}; allowed: ${SETTINGS.map((s) => s.name).join(', ')}, env (other worker variables go under env)`;
    } else if (issue.code === 'invalid_type' && issue.path.length === 0) {
      what = `expected a mapping of settings (key: value), got ${issue.received}`;
    }
    const where = keyPath.length ? keyPath.join('.') : '(top level)';
    throw new SettingsError(`config file ${file}: ${where}${at(keyOffset(doc.contents, keyPath))}: ${what}`);
  }
  return r.data;
}

/** Where a key (or, failing that, its nearest parent) starts in the file. */
function keyOffset(node: unknown, keyPath: (string | number)[]): number | undefined {
  let found: number | undefined;
  let cur = node;
  for (const k of keyPath) {
    if (!isMap(cur)) break;
    const pair = cur.items.find((p) => (p.key as { value?: unknown } | null)?.value === k);
    if (!pair) break;
    found = (pair.key as { range?: [number, number, number] }).range?.[0] ?? found;
    cur = pair.value;
  }
  return found;
}

function parseValue(spec: SettingSpec, raw: string | boolean | number, origin: string): string | number | boolean {
  if (spec.kind === 'bool') {
    if (typeof raw === 'boolean') return raw;
    const s = String(raw).trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
    throw new SettingsError(`${origin}: expected true or false, got "${raw}"`);
  }
  if (spec.kind === 'int') {
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new SettingsError(`${origin}: expected an integer between 1 and 256, got "${raw}"`);
    return n;
  }
  const s = String(raw).trim();
  if (!s) throw new SettingsError(`${origin}: must not be empty`);
  return s;
}

export interface Resolved {
  values: Partial<Record<SettingName, string | number | boolean>>;
  sources: Record<SettingName, Source>;
  /** The environment to start the services with. */
  env: Record<string, string>;
}

/**
 * Resolves every setting: flag > env > config file > default.
 * `flags` holds only the flags given on the command line.
 */
export function resolveSettings(
  flags: Partial<Record<SettingName, string | boolean>>,
  env: Record<string, string | undefined>,
  config: ConfigFile = {},
): Resolved {
  const values: Resolved['values'] = {};
  const sources = {} as Record<SettingName, Source>;
  // Lowest first: the config file's extra variables, then the environment.
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.env ?? {})) out[k] = String(v);
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;

  for (const spec of SETTINGS) {
    let value: string | number | boolean | undefined;
    let source: Source = 'default';
    const flag = flags[spec.name];
    const envValue = env[spec.env];
    const fileValue = config[spec.name];
    if (flag !== undefined) {
      value = parseValue(spec, flag, `--${spec.flag}`);
      source = 'flag';
    } else if (envValue !== undefined && envValue !== '') {
      value = parseValue(spec, envValue, spec.env);
      source = 'env';
    } else if (fileValue !== undefined) {
      value = parseValue(spec, fileValue, `config file key ${spec.name}`);
      source = 'config';
    } else {
      value = spec.dflt;
    }
    sources[spec.name] = source;
    if (value === undefined) continue;
    values[spec.name] = value;
    Object.assign(out, spec.toEnv(value));
  }
  return { values, sources, env: out };
}

/** One line per setting for --help: flag, env var, config key, default. */
export function precedenceHelp(): string {
  const rows = SETTINGS.map((s) => `  --${s.flag.padEnd(10)} env ${s.env.padEnd(21)} config "${s.name}"${s.dflt === undefined ? '' : `  (default ${s.dflt})`}`);
  return [
    'Where each setting comes from, highest first:',
    '  command-line flag > environment variable > config file (--config or HIVEMIND_CONFIG) > default',
    '',
    ...rows,
    '',
    'The config file is YAML (hivemind-worker init writes one listing every setting): the keys',
    'above, plus "env:" with any other worker variable (README, Configuration), e.g.',
    '  env:',
    '    REDIS_URL: redis://10.0.0.5:6379',
    'A variable set in the environment wins over the one under "env".',
  ].join('\n');
}
