import { parseConfigFile, precedenceHelp, resolveSettings, SettingsError } from './settings';

describe('hivemind-worker settings precedence', () => {
  const file = parseConfigFile(
    JSON.stringify({ nodeId: 'from-file', nodePool: 'file-pool:50051', maxTasks: 3, cpuOnly: true, debug: true, logFile: '/var/log/file.log', env: { REDIS_URL: 'redis://file:6379', TASK_TIMEOUT: 60 } }),
    'worker.json',
  );

  it('uses the defaults when nothing is given', () => {
    const r = resolveSettings({}, {});
    expect(r.values).toEqual({ nodePool: 'localhost:50051', maxTasks: 2, cpuOnly: false, debug: false });
    expect(r.sources).toEqual({ nodeId: 'default', nodePool: 'default', maxTasks: 'default', cpuOnly: 'default', debug: 'default', logFile: 'default' });
    expect(r.env).toEqual({ NODE_POOL_ADDRESS: 'localhost:50051', MAX_CONCURRENT_TASKS: '2', CPU_ONLY: 'false' });
  });

  it('config file beats the defaults', () => {
    const r = resolveSettings({}, {}, file);
    expect(r.values).toEqual({ nodeId: 'from-file', nodePool: 'file-pool:50051', maxTasks: 3, cpuOnly: true, debug: true, logFile: '/var/log/file.log' });
    expect(r.env).toMatchObject({ NODE_ID: 'from-file', NODE_POOL_ADDRESS: 'file-pool:50051', MAX_CONCURRENT_TASKS: '3', CPU_ONLY: 'true', LOG_LEVEL: 'debug', REDIS_URL: 'redis://file:6379', TASK_TIMEOUT: '60' });
    expect(new Set(Object.values(r.sources))).toEqual(new Set(['config']));
  });

  it('environment beats the config file, including its "env" block', () => {
    const env = { NODE_ID: 'from-env', MAX_CONCURRENT_TASKS: '5', CPU_ONLY: 'false', HIVEMIND_DEBUG: '0', REDIS_URL: 'redis://env:6379' };
    const r = resolveSettings({}, env, file);
    expect(r.values).toMatchObject({ nodeId: 'from-env', maxTasks: 5, cpuOnly: false, debug: false, nodePool: 'file-pool:50051' });
    expect(r.sources).toMatchObject({ nodeId: 'env', maxTasks: 'env', cpuOnly: 'env', debug: 'env', nodePool: 'config' });
    expect(r.env).toMatchObject({ NODE_ID: 'from-env', MAX_CONCURRENT_TASKS: '5', CPU_ONLY: 'false', REDIS_URL: 'redis://env:6379', TASK_TIMEOUT: '60' });
    // debug=false from the environment leaves LOG_LEVEL alone rather than forcing debug.
    expect(r.env.LOG_LEVEL).toBeUndefined();
  });

  it('a flag beats the environment and the config file', () => {
    const env = { NODE_ID: 'from-env', NODE_POOL_ADDRESS: 'env-pool:1', MAX_CONCURRENT_TASKS: '5', HIVEMIND_LOG_FILE: '/tmp/env.log' };
    const r = resolveSettings({ nodeId: 'from-flag', nodePool: 'flag-pool:2', maxTasks: '7', cpuOnly: true, debug: true, logFile: '/tmp/flag.log' }, env, file);
    expect(r.values).toEqual({ nodeId: 'from-flag', nodePool: 'flag-pool:2', maxTasks: 7, cpuOnly: true, debug: true, logFile: '/tmp/flag.log' });
    expect(new Set(Object.values(r.sources))).toEqual(new Set(['flag']));
    expect(r.env).toMatchObject({ NODE_ID: 'from-flag', NODE_POOL_ADDRESS: 'flag-pool:2', MAX_CONCURRENT_TASKS: '7', CPU_ONLY: 'true', LOG_LEVEL: 'debug' });
  });

  it('an empty environment variable does not hide the config file', () => {
    expect(resolveSettings({}, { NODE_ID: '' }, file).values.nodeId).toBe('from-file');
  });

  it('names the source of a bad value', () => {
    expect(() => resolveSettings({ maxTasks: 'many' }, {})).toThrow('--max-tasks: expected an integer between 1 and 256, got "many"');
    expect(() => resolveSettings({}, { MAX_CONCURRENT_TASKS: '0' })).toThrow('MAX_CONCURRENT_TASKS: expected an integer between 1 and 256, got "0"');
    expect(() => resolveSettings({}, { CPU_ONLY: 'maybe' })).toThrow('CPU_ONLY: expected true or false, got "maybe"');
    expect(() => resolveSettings({ nodeId: '  ' }, {})).toThrow(SettingsError);
  });

  it('refuses a bad config file with the file, the key and its line in the message', () => {
    expect(() => parseConfigFile('nodeId: [alice\n', 'a.yaml')).toThrow(/^config file a\.yaml: not valid YAML \(line \d+, column \d+\)/);
    expect(() => parseConfigFile('nodeId: a\nnodeId: b\n', 'dup.yaml')).toThrow(/^config file dup\.yaml: not valid YAML \(line 2, column 1\): Map keys must be unique/);
    expect(() => parseConfigFile('{"nodeid": "x"}', 'b.json')).toThrow('config file b.json: nodeid (line 1, column 2): unknown key(s) nodeid');
    expect(() => parseConfigFile('# a comment\nmaxTasks: "3"\n', 'c.yaml')).toThrow(/^config file c\.yaml: maxTasks \(line 2, column 1\): Expected number/);
    expect(() => parseConfigFile('env:\n  REDIS_URL: x\n  redis_url: x\n', 'd.yaml')).toThrow('config file d.yaml: env.redis_url (line 3, column 3): expected an upper-case variable name');
    expect(() => parseConfigFile('env:\n  TASK_TIMEOUT: [1, 2]\n', 'e.yaml')).toThrow('config file e.yaml: env.TASK_TIMEOUT (line 2, column 3): expected a string, number or true/false');
    expect(() => parseConfigFile('- nodeId\n', 'f.yaml')).toThrow('config file f.yaml: (top level): expected a mapping of settings (key: value), got array');
  });

  it('reads YAML, JSON (a JSON file is YAML too), and keys left without a value as unset', () => {
    const yaml = parseConfigFile('nodeId: alice\nmaxTasks: 3\ncpuOnly:\nenv:\n  REDIS_URL: redis://h:6379\n  TASK_TIMEOUT:\n', 'w.yaml');
    expect(yaml).toEqual({ nodeId: 'alice', maxTasks: 3, env: { REDIS_URL: 'redis://h:6379' } });
    expect(parseConfigFile('{"nodeId": "alice", "maxTasks": 3, "env": {"REDIS_URL": "redis://h:6379"}}', 'w.json')).toEqual({ nodeId: 'alice', maxTasks: 3, env: { REDIS_URL: 'redis://h:6379' } });
    expect(parseConfigFile('# nothing set\n', 'empty.yaml')).toEqual({});
  });

  it('--help text states the order and every setting', () => {
    const h = precedenceHelp();
    expect(h).toContain('command-line flag > environment variable > config file (--config or HIVEMIND_CONFIG) > default');
    for (const s of ['--node-id', 'NODE_ID', '--node-pool', 'NODE_POOL_ADDRESS', '--max-tasks', 'MAX_CONCURRENT_TASKS', '--cpu-only', 'CPU_ONLY', '--debug', '--log-file']) expect(h).toContain(s);
  });
});
