import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { testMounts, testNetworks, writeRunState } from './cleanup';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts a throwaway redis-server for the integration tests (unless TEST_REDIS_URL
 * points at one) and checks that the Docker daemon answers: these tests never skip.
 * Gives the run an id (HM_TEST_RUN: in every stack's Redis prefix and container
 * instance label) and notes what the host held before it, so the global teardown can
 * tell what this run left behind.
 */
export default async function globalSetup(): Promise<void> {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore' });
  } catch {
    throw new Error('the Docker daemon does not answer: run the tests with npm test (scripts/setup.sh starts it)');
  }
  const run = randomBytes(3).toString('hex');
  process.env.HM_TEST_RUN = run;
  writeRunState(run, { pid: process.pid, started: Date.now(), mounts: testMounts(), networks: testNetworks() });
  if (process.env.TEST_REDIS_URL) return;
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-test-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
    detached: true,
  });
  child.unref();
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.end();
        resolve(true);
      });
      sock.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  process.env.TEST_REDIS_URL = `redis://127.0.0.1:${port}`;
  process.env.TEST_REDIS_PID = String(child.pid);
  process.env.TEST_REDIS_DIR = dir;
}
