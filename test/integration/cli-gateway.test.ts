import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ownerClient, uploadTask, waitForStatus } from '../support/pool';
import { freePort, Stack, waitFor } from '../support/stack';
import { makeZip } from '../support/zips';

/**
 * hivemind-worker init, status, pause, resume, tasks and logs, run for real from dist/
 * against a running gateway (devpool, monitor, executor, gateway as their own processes).
 * Needs `npm run build`.
 */
const CLI = path.resolve(__dirname, '../../dist/apps/cli/src/main.js');

function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((resolve) => {
    // Only PATH from this process: the CLI must not pick up the test runner's settings.
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, out: stdout + stderr, stdout });
    });
  });
}

// API answers are checked field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

describe('hivemind-worker init and the gateway commands', () => {
  let stack: Stack;
  let pool: PoolClient;
  let token: string;
  /** The CLI's settings: the stack's gateway port and token file, as a volunteer's config would hold them. */
  let env: Record<string, string>;
  const api = async (p: string): Promise<Json> => (await (await fetch(`${stack.gatewayHttp}${p}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json;

  beforeAll(async () => {
    stack = await Stack.create('cligw');
    await stack.start('devpool');
    await stack.start('monitor');
    await stack.start('executor');
    await stack.start('gateway');
    token = (await fs.readFile(stack.env.DASHBOARD_TOKEN_FILE, 'utf8')).trim();
    env = { HTTP_PORT: stack.env.HTTP_PORT, DASHBOARD_TOKEN_FILE: stack.env.DASHBOARD_TOKEN_FILE };
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    pool?.close();
    await stack?.destroy();
  });

  it('init writes a file that sets only what it was given, refuses to overwrite without --force, and the file works once edited', async () => {
    const file = path.join(stack.dir, 'hivemind-worker.yaml');
    const first = await runCli(['init', file, '--node-id', 'alice', '--max-tasks', '3']);
    expect(first.code).toBe(0);
    const text = await fs.readFile(file, 'utf8');
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(text).toMatch(/^nodeId: "alice"$/m);
    expect(text).toMatch(/^maxTasks: 3$/m);
    expect(text).toMatch(/^# nodePool: "localhost:50051"$/m);
    expect(text).toMatch(/^ {2}# HTTP_PORT: 5001$/m);
    expect(text).toMatch(/^ {2}# TASK_TIMEOUT: 3600$/m);

    const again = await runCli(['init', file]);
    expect(again.code).toBe(2);
    expect(again.out).toContain(`${file} already exists; use --force to overwrite it`);
    expect(await fs.readFile(file, 'utf8')).toBe(text);

    // The volunteer's edit: uncomment two lines of the env section.
    const edited = text
      .replace(/^ {2}# HTTP_PORT: 5001$/m, `  HTTP_PORT: ${stack.env.HTTP_PORT}`)
      .replace(/^ {2}# DASHBOARD_TOKEN_FILE:$/m, `  DASHBOARD_TOKEN_FILE: ${JSON.stringify(stack.env.DASHBOARD_TOKEN_FILE)}`);
    expect(edited).not.toBe(text);
    await fs.writeFile(file, edited);
    const status = await runCli(['status', '--json', '--config', file]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ node: { nodeId: 'alice' } });

    // The environment wins over the file: a port nothing listens on.
    const closed = String(await freePort());
    const down = await runCli(['status', '--config', file], { HTTP_PORT: closed });
    expect(down.code).toBe(1);
    expect(down.out).toContain(`status: the gateway is not running or not reachable at http://127.0.0.1:${closed}`);

    const forced = await runCli(['init', file, '--force', '--node-pool', 'pool.example.org:50051']);
    expect(forced.code).toBe(0);
    const rewritten = await fs.readFile(file, 'utf8');
    expect(rewritten).toMatch(/^nodePool: "pool.example.org:50051"$/m);
    expect(rewritten).toMatch(/^# nodeId:$/m);
  });

  it('a bad config file stops the command naming the key and its line', async () => {
    const file = path.join(stack.dir, 'bad.yaml');
    await fs.writeFile(file, '# mine\nnodeId: alice\nenv:\n  HTTP_PORT: 5001\n  http_port: 5002\n');
    const r = await runCli(['status', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.out).toContain(`config file ${file}: env.http_port (line 5, column 3): expected an upper-case variable name`);
  });

  it('status: the node in words, or the API JSON with --json', async () => {
    const human = await runCli(['status'], env);
    expect(human.code).toBe(0);
    const line = (name: string) => human.stdout.split('\n').find((l) => l.startsWith(name)) ?? `(no ${name} line)`;
    expect(line('Node')).toMatch(/^Node {6}alice \(the pool dials localhost:\d+\)$/);
    expect(line('Pool')).toMatch(new RegExp(`^Pool {6}${stack.devpoolAddress}: (connected|logged in|not logged in)`));
    expect(line('Tasks')).toBe('Tasks     0 held of 2');
    expect(line('Host')).toMatch(/^Host {6}CPU \d+ %, memory \d+ % \([\d.]+ GB of [\d.]+ GB\), disk \d+ % \([\d.]+ GB free\)$/);

    const json = await runCli(['status', '--json'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ node: { nodeId: 'alice' }, paused: false, pool: { address: stack.devpoolAddress } });
  });

  it('pause and resume change what the API reports', async () => {
    const paused = await runCli(['pause'], env);
    expect(paused.code).toBe(0);
    expect(await api('/api/status')).toMatchObject({ paused: true, status: 'Paused' });
    const status = await runCli(['status'], env);
    expect(status.stdout).toMatch(/^Status {4}Paused \(paused: takes no new tasks; resume with: hivemind-worker resume\)$/m);

    const resumed = await runCli(['resume', '--json'], env);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toEqual({ paused: false });
    expect(await api('/api/status')).toMatchObject({ paused: false });
    expect((await api('/api/status')).status).not.toBe('Paused');
  });

  it('tasks lists a finished task and logs prints its output', async () => {
    const zip = await makeZip([{ name: 'run.py', content: 'print("cli-task says hello", flush=True)\nopen("result/out.txt", "w").write("done")\n' }]);
    expect((await uploadTask(pool, 'cli-1', zip)).success).toBe(true);
    await waitForStatus(pool, 'cli-1', ['COMPLETED']);
    await waitFor('cli-1 in the history', async () => ((await api('/api/tasks')).history as Json[]).some((h) => h.taskId === 'cli-1'));

    const json = await runCli(['tasks', '--json', '--limit', '5'], env);
    expect(json.code).toBe(0);
    const listed = JSON.parse(json.stdout) as Json;
    expect(listed.history.find((h: Json) => h.taskId === 'cli-1')).toMatchObject({ status: 'Success', uploadedAt: expect.any(Number) });

    const human = await runCli(['tasks'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Running: none');
    expect(human.stdout).toMatch(/^TASK +STATUS +FINISHED +TOOK +RESULT +REASON$/m);
    expect(human.stdout).toMatch(/^cli-1 +Success +\d+ s ago +[\d.]+ s +\d+ MB /m);

    const logs = await runCli(['logs', 'cli-1'], env);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('cli-task says hello');

    const missing = await runCli(['logs', 'no-such-task'], env);
    expect(missing.code).toBe(1);
    expect(missing.out).toContain('logs: GET /api/tasks/no-such-task/logs: the gateway answered 404: no logs for task no-such-task');
  });

  it('a wrong token, a missing token file and a bad --limit get a clear error', async () => {
    const wrong = await runCli(['status'], { HTTP_PORT: stack.env.HTTP_PORT, DASHBOARD_TOKEN: 'x'.repeat(40) });
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain(`status: the gateway at http://127.0.0.1:${stack.env.HTTP_PORT} refused the dashboard token from DASHBOARD_TOKEN`);

    const noFile = path.join(stack.dir, 'no-token');
    const none = await runCli(['pause'], { HTTP_PORT: stack.env.HTTP_PORT, DASHBOARD_TOKEN_FILE: noFile });
    expect(none.code).toBe(1);
    expect(none.out).toContain(`pause: no dashboard token: ${noFile} does not exist`);
    expect(await api('/api/status')).toMatchObject({ paused: false });

    const limit = await runCli(['tasks', '--limit', 'all'], env);
    expect(limit.code).toBe(2);
    expect(limit.out).toContain('--limit: expected a positive integer, got "all"');
  });
});
