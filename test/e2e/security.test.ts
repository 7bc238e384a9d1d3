import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { NodeStateConnection } from '@hivemind/shared/state/node-state';
import { ExecuteTaskRequest, WorkerNodeServiceClient } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { SECRET_METADATA_KEY } from '@hivemind/shared/security/caller-guard';
import { makeTestPki, TestPki } from '../support/certs';
import { makeTempDir } from '../support/cleanup';
import { executeRequest, uploadTask, waitForStatus } from '../support/pool';
import { apiStatus, nodeStateOf } from '../support/node-state';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip } from '../support/zips';

const request = (p: Partial<ExecuteTaskRequest>) => executeRequest({ task_id: 'sec-1', ...p });

const withSecret = (secret: string) => {
  const md = new Metadata();
  md.set(SECRET_METADATA_KEY, secret);
  return md;
};

describe('callers outside the allow list', () => {
  let stack: Stack;
  let worker: WorkerNodeServiceClient;
  let state: NodeStateConnection;

  beforeAll(async () => {
    // Only a TEST-NET address may push work: this machine's own calls must be refused.
    stack = await Stack.create('allow', { ALLOWED_POOL_ADDRESSES: '192.0.2.10,198.51.100.0/24' });
    await stack.startAll();
    worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
    state = nodeStateOf(stack);
  });

  afterAll(async () => {
    worker?.close();
    await state?.close();
    await stack?.stopAll();
  });

  it('get PERMISSION_DENIED for ExecuteTask and StopTaskExecution, and nothing runs', async () => {
    const zip = await makeZip([{ name: 'run.py', content: 'print(1)' }]);
    await expect(unary(worker, worker.executeTask, request({ task_zip: zip }))).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
      details: 'caller 127.0.0.1 is not an allowed Node Pool address; this node takes tasks only from its Node Pool',
    });
    await expect(unary(worker, worker.stopTaskExecution, { task_id: 'sec-1' })).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    expect((await state.ledger.totals()).tasks).toBe(0);
    expect(await fs.readdir(path.join(stack.env.WORK_DIR, 'incoming')).catch(() => [])).toEqual([]);
  });

  it('are refused on their metadata, before a large body is read', async () => {
    const big = Buffer.alloc(48 << 20, 7);
    const t0 = Date.now();
    await expect(unary(worker, worker.executeTask, request({ task_zip: big }))).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('are counted, and logged with their address without flooding the log', async () => {
    const zip = await makeZip([{ name: 'run.py', content: 'print(1)' }]);
    const calls = Array.from({ length: 200 }, () => unary(worker, worker.executeTask, request({ task_zip: zip })).catch((e) => e));
    await Promise.all(calls);
    const counted = (await state.callerRefusals.all()).get('ADDRESS') ?? 0;
    expect(counted).toBeGreaterThanOrEqual(203);
    const gateway = stack.services.find((s) => s.name === 'gateway')!;
    const lines = gateway.output().split('\n').filter((l) => l.includes('refused a caller'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(lines[0]).toContain('"caller":"127.0.0.1"');
  });
});

describe('a shared secret, plaintext transport', () => {
  let stack: Stack;
  let worker: WorkerNodeServiceClient;
  let pool: PoolClient;
  const SECRET = 'pool-shared-secret-8c1f';

  beforeAll(async () => {
    stack = await Stack.create('secret', { POOL_SHARED_SECRET: SECRET, DEVPOOL_SHARED_SECRET: SECRET, MAX_MESSAGE_MB: '1', LOG_LEVEL: 'trace' });
    await stack.startAll();
    worker = new WorkerNodeServiceClient(stack.gatewayAddress, insecure(), messageSizeOptions(64 << 20));
    pool = new PoolClient(stack.devpoolAddress, { username: 'alice', password: 'alice-password' }, { maxMessageBytes: 1 << 26, callTimeoutMs: 20_000 });
  });

  afterAll(async () => {
    worker?.close();
    pool?.close();
    await stack?.stopAll();
  });

  it('refuses callers without the secret or with a wrong one', async () => {
    const zip = await makeZip([{ name: 'run.py', content: 'print(1)' }]);
    for (const md of [new Metadata(), withSecret('guess'), withSecret(`${SECRET}x`)]) {
      await expect(unary(worker, worker.executeTask, request({ task_zip: zip }), md)).rejects.toMatchObject({
        code: status.PERMISSION_DENIED,
        details: expect.stringContaining("did not present the pool's shared secret"),
      });
    }
    const ok = await unary(worker, worker.executeTask, request({ task_id: 'bad id' }), withSecret(SECRET));
    expect(ok).toEqual({ success: false, message: 'task_id may only contain letters, digits, "_" and "-"' });
  });

  it('refuses a message above the configured cap (MAX_MESSAGE_MB) with a message', async () => {
    await expect(unary(worker, worker.executeTask, request({ task_zip: Buffer.alloc(2 << 20) }), withSecret(SECRET))).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      details: expect.stringMatching(/larger than max/),
    });
  });

  it('runs tasks from a pool that sends the secret; no secret reaches the task, its result or any log', async () => {
    const dump = [
      'import os',
      'env = dict(os.environ)',
      'try:',
      '    env["/proc/1/environ"] = open("/proc/1/environ").read()',
      'except OSError as e:',
      '    env["/proc/1/environ"] = str(e)',
      'print(env)',
      'open(os.path.join(os.environ["RESULT_DIR"], "env.txt"), "w").write(repr(env))',
    ].join('\n');
    expect((await uploadTask(pool, 'envdump', await makeZip([{ name: 'main.py', content: dump }]))).success).toBe(true);
    expect((await waitForStatus(pool, 'envdump', ['COMPLETED', 'FAILED'])).status).toBe('COMPLETED');
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: 'envdump', token }));
    const files = await unzip(Buffer.from(res.result_zip));
    const everything = [...files.values()].map((f) => f.data.toString()).join('\n');
    expect(everything).toContain('TASK_ID');
    expect(files.get('execution_log.txt')!.data.toString()).toContain('Status: Success');
    const log = (await pool.call(pool.master, pool.master.getTasklog, (token) => ({ task_id: 'envdump', token }))).log;
    const logs = stack.services.map((s) => s.output()).join('\n');
    expect(logs.length).toBeGreaterThan(1000);
    for (const text of [everything, log, logs]) {
      expect(text).not.toContain('alice-password');
      expect(text).not.toContain(SECRET);
      expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/); // no JWT
    }
  });
});

describe('TLS and mTLS', () => {
  let stack: Stack;
  let pki: TestPki;
  let pool: PoolClient;

  beforeAll(async () => {
    const dir = path.join(await makeTempDir('hm-pki-'), 'pki');
    pki = await makeTestPki(dir);
    stack = await Stack.create('tls', {
      // The worker serves mTLS and talks TLS to the pool.
      GRPC_TLS_CERT: pki.server.cert,
      GRPC_TLS_KEY: pki.server.key,
      GRPC_TLS_CLIENT_CA: pki.ca.cert,
      POOL_TLS_CA: pki.ca.cert,
      // The pool serves TLS and dials workers with its client certificate.
      DEVPOOL_TLS_CERT: pki.server.cert,
      DEVPOOL_TLS_KEY: pki.server.key,
      DEVPOOL_WORKER_CA: pki.ca.cert,
      DEVPOOL_CLIENT_CERT: pki.client.cert,
      DEVPOOL_CLIENT_KEY: pki.client.key,
    });
    await stack.startAll();
    pool = new PoolClient(stack.devpoolAddress, { username: 'alice', password: 'alice-password' }, {
      maxMessageBytes: 1 << 26,
      callTimeoutMs: 20_000,
      channelCredentials: credentials.createSsl(readFileSync(pki.ca.cert)),
    });
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  it('carries the whole loop over TLS both ways, with the pool presenting a client certificate', async () => {
    expect((await uploadTask(pool, 'tls-1', await makeZip([{ name: 'run.sh', content: 'echo over tls' }]))).success).toBe(true);
    expect((await waitForStatus(pool, 'tls-1', ['COMPLETED', 'FAILED'])).status).toBe('COMPLETED');
    // The gateway serves mutual TLS (so the pool's dial carried its client certificate): a TLS caller without one is turned away.
    const anonymous = new WorkerNodeServiceClient(stack.gatewayAddress, credentials.createSsl(readFileSync(pki.ca.cert)));
    try {
      await expect(unary(anonymous, anonymous.executeTask, request({ task_id: 'bad id' }), new Metadata(), 5000)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    } finally {
      anonymous.close();
    }
  });

  it('refuses callers without a valid client certificate, and plaintext callers', async () => {
    const ca = readFileSync(pki.ca.cert);
    const clients = {
      'no client certificate': credentials.createSsl(ca),
      'a certificate from another CA': credentials.createSsl(ca, readFileSync(pki.rogue.key), readFileSync(pki.rogue.cert)),
      plaintext: insecure(),
    };
    for (const [name, creds] of Object.entries(clients)) {
      const c = new WorkerNodeServiceClient(stack.gatewayAddress, creds);
      const outcome = await unary(c, c.executeTask, request({ task_id: 'bad id' }), new Metadata(), 5000).then(
        () => 'answered',
        (err: { code: number }) => err.code,
      );
      c.close();
      expect([name, outcome]).toEqual([name, status.UNAVAILABLE]);
    }
    const good = new WorkerNodeServiceClient(stack.gatewayAddress, credentials.createSsl(ca, readFileSync(pki.client.key), readFileSync(pki.client.cert)));
    expect(await unary(good, good.executeTask, request({ task_id: 'bad id' }))).toMatchObject({ success: false });
    good.close();
  });
});

describe('a stored credential file', () => {
  it('that others can read stops the gateway with a message', async () => {
    const stack = await Stack.create('cred');
    const file = path.join(stack.dir, 'credentials.json');
    await fs.writeFile(file, JSON.stringify({ username: 'alice', password: 'alice-password' }), { mode: 0o644 });
    await fs.chmod(file, 0o644);
    await expect(stack.start('gateway', { NODE_PASSWORD: '', CREDENTIALS_FILE: file })).rejects.toThrow(
      /exited with 2[\s\S]*CREDENTIALS_FILE: ".*credentials.json" has mode 0644; .*chmod 600/,
    );
    await fs.chmod(file, 0o600);
    await stack.start('devpool');
    await stack.start('gateway', { NODE_PASSWORD: '', CREDENTIALS_FILE: file });
    // Logged in with the stored password: /api/status shows the pool link up and the CPT balance it fetched.
    await waitFor('the gateway to log in with the stored password', async () => {
      const s = await apiStatus(stack);
      return s.pool.loggedIn && s.cpt.balance !== null;
    }, 20_000);
    await stack.stopAll();
  });
});
