import { z } from 'zod';
import { errorMessage } from '@hivemind/shared/util/errors';

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

/** The config file: the settings above by name, plus any other worker variable under "env". */
const configFileSchema = z
  .object({
    nodeId: z.string().min(1),
    nodePool: z.string().min(1),
    maxTasks: z.number().int().min(1).max(256),
    cpuOnly: z.boolean(),
    debug: z.boolean(),
    logFile: z.string().min(1),
    env: z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'expected an upper-case variable name'), z.union([z.string(), z.number(), z.boolean()])),
  })
  .partial()
  .strict();

export type ConfigFile = z.infer<typeof configFileSchema>;

export class SettingsError extends Error {}

/** Parses and checks a config file's text; the error names the file and the key. */
export function parseConfigFile(text: string, file: string): ConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SettingsError(`config file ${file}: not valid JSON (${errorMessage(err)})`);
  }
  const r = configFileSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    const what = issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}; allowed: ${SETTINGS.map((s) => s.name).join(', ')}, env` : issue.message;
    throw new SettingsError(`config file ${file}: ${where}: ${what}`);
  }
  return r.data;
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
    'The config file is JSON: the keys above, plus "env": {"REDIS_URL": "...", ...} for any other',
    'worker variable (README, Configuration); a variable set in the environment wins over "env".',
  ].join('\n');
}
