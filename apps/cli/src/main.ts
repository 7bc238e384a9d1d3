#!/usr/bin/env node
/**
 * hivemind-worker: runs a HiveMind worker node (gateway, executor, monitor) with
 * settings from flags, the environment, a config file and defaults, in that order;
 * `init` writes a commented config file, `doctor` checks the machine, `health` is the
 * container health check; `status`, `pause`, `resume`, `tasks` and `logs` ask a running
 * gateway's API.
 *
 * This is the one place the command reads process.env: it builds the services'
 * environment from it, and the services validate it through libs/shared/src/config.
 */
import 'reflect-metadata';
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadWorkerConfig, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { resolveCredentials } from '@hivemind/shared/security/secrets';
import { formatTable, runDoctor } from './doctor';
import { checkHealth, SERVICES, ServiceName } from './health';
import { renderConfigTemplate } from './config-template';
import { connectGateway, GatewayError } from './gateway-client';
import { launchServices } from './launcher';
import { runNodeCommand } from './node-commands';
import { ConfigFile, parseConfigFile, precedenceHelp, Resolved, resolveSettings, SETTINGS, SettingName, SettingsError } from './settings';
import { errorMessage } from '@hivemind/shared/util/errors';

const pkg = require('../../../../package.json') as { version: string };

function addSettingOptions(cmd: Command): Command {
  for (const s of SETTINGS) {
    const dflt = s.dflt === undefined ? '' : ` (default: ${s.dflt})`;
    const flag = s.kind === 'bool' ? `--${s.flag}` : `--${s.flag} <${s.kind === 'int' ? 'n' : 'value'}>`;
    cmd.addOption(new Option(flag, `${s.describe}; env ${s.env}${dflt}`));
  }
  cmd.addOption(new Option('--config <file>', 'YAML config file (hivemind-worker init writes one); env HIVEMIND_CONFIG'));
  cmd.addHelpText('after', `\n${precedenceHelp()}`);
  return cmd;
}

function resolveFrom(opts: Record<string, unknown>): { resolved: Resolved; config: WorkerConfig } {
  const file = (opts.config as string | undefined) ?? process.env.HIVEMIND_CONFIG;
  let configFile: ConfigFile = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new SettingsError(`config file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : errorMessage(err)}`);
    }
    configFile = parseConfigFile(text, file);
  }
  const flags: Partial<Record<SettingName, string | boolean>> = {};
  for (const s of SETTINGS) {
    const v = opts[s.name];
    if (v !== undefined) flags[s.name] = v as string | boolean;
  }
  const resolved = resolveSettings(flags, process.env, configFile);
  return { resolved, config: loadWorkerConfig(resolved.env) };
}

function settingsSummary(r: Resolved): string {
  return SETTINGS.map((s) => `${s.flag}=${r.values[s.name] ?? '(unset)'} [${r.sources[s.name]}]`).join('  ');
}

function fail(err: unknown): never {
  console.error(errorMessage(err) ?? String(err));
  process.exit(2);
}

const program = new Command('hivemind-worker')
  .description('Run a HiveMind worker node: its gateway, executor and monitor.')
  .version(pkg.version)
  .showHelpAfterError()
  .addHelpText('after', `\nWith no command, start runs: hivemind-worker --node-id alice --node-pool pool.example:50051\n\n${precedenceHelp()}`);

addSettingOptions(
  program
    .command('start', { isDefault: true })
    .description('start the worker (gateway, executor, monitor) against a Node Pool; needs Redis at REDIS_URL and Docker'),
).action(async (opts: Record<string, unknown>) => {
  let resolved: Resolved;
  let config: WorkerConfig;
  try {
    ({ resolved, config } = resolveFrom(opts));
    resolveCredentials(config);
  } catch (err) {
    fail(err);
  }
  console.log(`[hivemind-worker] ${settingsSummary(resolved)}`);
  // On a terminal the services' log reads as lines for a person, unless LOG_FORMAT says otherwise.
  const env = { ...resolved.env };
  if (env.LOG_FORMAT === undefined && process.stdout.isTTY) env.LOG_FORMAT = 'pretty';
  process.exitCode = await launchServices({ env, logFile: resolved.values.logFile as string | undefined });
});

addSettingOptions(program.command('doctor').description('check Docker, the task image, Redis, the Node Pool, disk, credentials and GPU; exit 1 when something is not ready')).action(
  async (opts: Record<string, unknown>) => {
    let resolved: Resolved;
    let config: WorkerConfig;
    try {
      ({ resolved, config } = resolveFrom(opts));
    } catch (err) {
      fail(err);
    }
    console.log(`settings: ${settingsSummary(resolved)}\n`);
    const results = await runDoctor(config);
    console.log(formatTable(results));
    process.exitCode = results.some((r) => r.status === 'fail') ? 1 : 0;
  },
);

program
  .command('health')
  .description("container health check of a service: its /health/ready, or (without one) what Redis knows of it; exit 0 when healthy")
  .argument('[service]', `${SERVICES.join(', ')} (default: env SERVICE)`)
  .action(async (service: string | undefined) => {
    const name = (service ?? process.env.SERVICE ?? '') as ServiceName;
    if (!SERVICES.includes(name)) fail(`health: expected a service (${SERVICES.join(', ')}), got "${name}"`);
    try {
      const r = await checkHealth(name, process.env);
      console.log(`${name}: ${r.ok ? 'healthy' : 'unhealthy'}: ${r.detail}`);
      process.exitCode = r.ok ? 0 : 1;
    } catch (err) {
      console.log(`${name}: unhealthy: ${errorMessage(err)}`);
      process.exitCode = 1;
    }
  });

program
  .command('init')
  .description('write a config file listing every setting with its default and meaning (commented out); the flags given are written as values')
  .argument('[file]', 'where to write it', 'hivemind-worker.yaml')
  .option('--force', 'overwrite the file when it exists')
  .addOption(new Option('--node-id <value>', SETTINGS[0].describe))
  .addOption(new Option('--node-pool <value>', "the Node Pool's gRPC address, host:port"))
  .addOption(new Option('--max-tasks <n>', 'tasks the node holds at once (1-256)'))
  .addOption(new Option('--cpu-only', 'offer no GPU and do not probe for one'))
  .action((file: string, opts: Record<string, unknown>) => {
    let text: string;
    try {
      const flags: Partial<Record<SettingName, string | boolean>> = {};
      for (const s of SETTINGS) if (opts[s.name] !== undefined) flags[s.name] = opts[s.name] as string | boolean;
      const r = resolveSettings(flags, {});
      const values: Resolved['values'] = {};
      for (const s of SETTINGS) if (r.sources[s.name] === 'flag') values[s.name] = r.values[s.name];
      text = renderConfigTemplate(values);
    } catch (err) {
      fail(err);
    }
    try {
      // 0600: the file may come to hold the node's password or the pool's secret.
      writeFileSync(file, text, { mode: 0o600, flag: opts.force ? 'w' : 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') fail(`init: ${file} already exists; use --force to overwrite it`);
      fail(`init: cannot write ${file}: ${errorMessage(err)}`);
    }
    console.log(`wrote ${file}: every setting with its default (commented out). Edit it, then run: hivemind-worker --config ${file}`);
  });

/** status, pause, resume, tasks and logs: the running gateway's API, with the dashboard token. */
function gatewayCommand(name: 'status' | 'pause' | 'resume' | 'tasks' | 'logs', description: string): Command {
  return program
    .command(name)
    .description(description)
    .option('--json', "print the gateway's JSON answer")
    .option('--url <url>', 'the gateway\'s HTTP address (default: http://HTTP_HOST:HTTP_PORT, 127.0.0.1:5001)')
    .option('--config <file>', 'YAML config file (for HTTP_PORT, DASHBOARD_TOKEN_FILE, ...); env HIVEMIND_CONFIG');
}

async function askGateway(command: 'status' | 'pause' | 'resume' | 'tasks' | 'logs', opts: Record<string, unknown>, extra: { taskId?: string; limit?: number } = {}): Promise<void> {
  let config: WorkerConfig;
  try {
    ({ config } = resolveFrom(opts));
  } catch (err) {
    fail(err);
  }
  try {
    const client = await connectGateway(config, opts.url === undefined ? undefined : String(opts.url).replace(/\/+$/, ''));
    console.log(await runNodeCommand(client, command, { json: opts.json === true, ...extra }));
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    console.error(`${command}: ${err.message}`);
    process.exitCode = 1;
  }
}

gatewayCommand('status', "the node's state: pool link, status, tasks held, CPT, host, recent problems").action((opts: Record<string, unknown>) => askGateway('status', opts));
gatewayCommand('pause', 'stop taking new tasks (the pool sees "Paused"); tasks held run to the end').action((opts: Record<string, unknown>) => askGateway('pause', opts));
gatewayCommand('resume', 'take tasks again after pause').action((opts: Record<string, unknown>) => askGateway('resume', opts));
gatewayCommand('tasks', 'running tasks, results the pool refused, and the last finished tasks')
  .option('--limit <n>', 'finished tasks to list (1 to TASK_HISTORY_SIZE)')
  .action((opts: Record<string, unknown>) => {
    const limit = opts.limit === undefined ? undefined : Number(opts.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) fail(`--limit: expected a positive integer, got "${String(opts.limit)}"`);
    return askGateway('tasks', opts, { limit });
  });
gatewayCommand('logs', "a task's logs: live while it runs, else the tail kept in the history")
  .argument('<task>', 'the task id')
  .action((taskId: string, opts: Record<string, unknown>) => askGateway('logs', opts, { taskId }));

program.parseAsync(process.argv).catch(fail);
