#!/usr/bin/env node
/**
 * hivemind-worker: runs a HiveMind worker node (gateway, executor, monitor) with
 * settings from flags, the environment, a config file and defaults, in that order;
 * `doctor` checks the machine, `health` is the container health check.
 *
 * This is the one place the command reads process.env: it builds the services'
 * environment from it, and the services validate it through libs/shared/src/config.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadWorkerConfig, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { resolveCredentials } from '@hivemind/shared/security/secrets';
import { formatTable, runDoctor } from './doctor';
import { checkHealth, SERVICES, ServiceName } from './health';
import { launchServices } from './launcher';
import { ConfigFile, parseConfigFile, precedenceHelp, Resolved, resolveSettings, SETTINGS, SettingName, SettingsError } from './settings';
import { errorMessage } from '@hivemind/shared/util/errors';

const pkg = require('../../../../package.json') as { version: string };

function addSettingOptions(cmd: Command): Command {
  for (const s of SETTINGS) {
    const dflt = s.dflt === undefined ? '' : ` (default: ${s.dflt})`;
    const flag = s.kind === 'bool' ? `--${s.flag}` : `--${s.flag} <${s.kind === 'int' ? 'n' : 'value'}>`;
    cmd.addOption(new Option(flag, `${s.describe}; env ${s.env}${dflt}`));
  }
  cmd.addOption(new Option('--config <file>', 'JSON config file; env HIVEMIND_CONFIG'));
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

program.parseAsync(process.argv).catch(fail);
