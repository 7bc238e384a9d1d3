#!/usr/bin/env node
/**
 * hivemind submit: zips a folder, uploads it to a Node Pool (MasterNodeService),
 * follows its output, downloads and unpacks the result zip, and exits 0 only when
 * the task succeeded (1: task failed or stopped, 2: refused or bad usage, 3: timed out).
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { grpcErrorText } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { channelCredentials } from '@hivemind/shared/security/tls';
import { extractZip } from '@hivemind/shared/task-format/zip-extract';
import { newLogText, statusOf, uploadTask, zipFolder } from './submit-client';
import { errorMessage } from '@hivemind/shared/util/errors';

const USAGE = `usage: npm run submit -- <folder> [options]
  --pool HOST:PORT     Node Pool address (env HIVEMIND_POOL, default localhost:50051)
  --user NAME          task owner's username (env HIVEMIND_USER, default alice)
  --password PW        password (env HIVEMIND_PASSWORD, default alice-password)
  --task-id ID         task id (default: folder name plus a random suffix)
  --out DIR            where results are unpacked (default ./results)
  --memory-gb N        memory the task asks for (default 0: the node's default)
  --cpu-score N        cpu score the task asks for (default 0)
  --timeout S          give up waiting after S seconds (default 3600)
  --ca FILE            talk TLS to the pool, trusting this CA certificate
  --quiet              do not print the task's output`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        pool: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        'task-id': { type: 'string' },
        out: { type: 'string' },
        'memory-gb': { type: 'string' },
        'cpu-score': { type: 'string' },
        timeout: { type: 'string' },
        ca: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    console.error(`${errorMessage(err)}\n${USAGE}`);
    return 2;
  }
  const o = args.values;
  if (o.help) {
    console.log(USAGE);
    return 0;
  }
  const folder = args.positionals[0];
  if (!folder) {
    console.error(`a folder to submit is required\n${USAGE}`);
    return 2;
  }
  const st = await fs.stat(folder).catch(() => null);
  if (!st?.isDirectory()) {
    console.error(`${folder} is not a folder`);
    return 2;
  }
  const num = (v: string | undefined, name: string, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number of at least 0, got "${v}"`);
    return n;
  };
  let memoryGb: number, cpuScore: number, timeoutS: number;
  try {
    memoryGb = Math.floor(num(o['memory-gb'], 'memory-gb', 0));
    cpuScore = Math.floor(num(o['cpu-score'], 'cpu-score', 0));
    timeoutS = num(o.timeout, 'timeout', 3600);
  } catch (err) {
    console.error(errorMessage(err));
    return 2;
  }
  const poolAddress = o.pool ?? process.env.HIVEMIND_POOL ?? 'localhost:50051';
  const username = o.user ?? process.env.HIVEMIND_USER ?? 'alice';
  const password = o.password ?? process.env.HIVEMIND_PASSWORD ?? 'alice-password';
  const base = path.basename(path.resolve(folder)).replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'task';
  const taskId = o['task-id'] ?? `${base}-${randomBytes(4).toString('hex')}`;
  const outDir = path.resolve(o.out ?? 'results', taskId);

  let channel;
  try {
    channel = channelCredentials({ tls: Boolean(o.ca), ca: o.ca, names: { ca: '--ca', cert: '', key: '' } });
  } catch (err) {
    console.error(errorMessage(err));
    return 2;
  }
  const pool = new PoolClient(poolAddress, { username, password }, { maxMessageBytes: 1024 * 1024 * 1024, callTimeoutMs: 60_000, channelCredentials: channel });
  try {
    await pool.login();
    const zip = await zipFolder(folder);
    const up = await uploadTask(pool, taskId, zip, { memoryGb, cpuScore });
    if (!up.success) {
      console.error(`the pool refused the task: ${up.message}`);
      return 2;
    }
    console.error(`submitted ${taskId} (${zip.length} bytes) to ${poolAddress}`);

    let lastLog = '';
    let lastStatus = '';
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      const [log, all] = await Promise.all([
        pool.call(pool.master, pool.master.getTasklog, (token) => ({ task_id: taskId, token })),
        pool.call(pool.master, pool.master.getAllUserTasks, (token) => ({ token })),
      ]);
      if (log.success && !o.quiet) {
        const fresh = newLogText(lastLog, log.log);
        if (fresh) process.stdout.write(fresh);
      }
      if (log.success) lastLog = log.log;
      const info = all.tasks.find((t) => t.task_id === taskId);
      const status = info?.status ?? 'UNKNOWN';
      if (status !== lastStatus) {
        console.error(`[${new Date().toISOString()}] ${taskId}: ${status}${info?.message ? ` (${info.message})` : ''}`);
        lastStatus = status;
      }
      if (['COMPLETED', 'FAILED', 'STOPPED'].includes(status)) {
        const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
        if (!res.success) {
          console.error(`no result for ${taskId}: ${res.message}`);
          return 1;
        }
        const tmp = path.join(os.tmpdir(), `hivemind-result-${taskId}.zip`);
        await fs.writeFile(tmp, res.result_zip);
        await fs.rm(outDir, { recursive: true, force: true });
        await extractZip(tmp, '', outDir, { maxEntries: 1_000_000, maxUncompressedBytes: 64 * 1024 ** 3 });
        await fs.rm(tmp, { force: true });
        const exec = await fs.readFile(path.join(outDir, 'execution_log.txt'), 'utf8').catch(() => '');
        const outcome = statusOf(exec) ?? status;
        console.error(`result of ${taskId}: ${outcome}; unpacked in ${outDir}`);
        return outcome === 'Success' ? 0 : 1;
      }
      if (Date.now() > deadline) {
        console.error(`gave up waiting for ${taskId} after ${timeoutS} s (status ${status})`);
        return 3;
      }
      await sleep(1000);
    }
  } catch (err) {
    console.error(`submit failed: ${grpcErrorText(err)}`);
    return 2;
  } finally {
    pool.close();
  }
}

void main().then((code) => process.exit(code));
