import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The two setups' Debian packages: scripts/setup.sh (npm run worker, npm run demo)
 * installs what the worker runs on and nothing of the test bench; scripts/setup-dev.sh
 * (npm test) adds what the tests need. What each would install on a fresh machine comes
 * from apt's own simulation of the setup's install command (nothing is installed).
 */
const ROOT = path.resolve(__dirname, '../..');
/** Settings the runtime setup reads; each case sets its own. */
const SETTINGS = ['REDIS_URL', 'DOCKER_ENABLED', 'ALLOW_PROCESS_RUNTIME'];
/** What the worker never needs: the test bench, and a kernel (wireguard-tools' recommendation). */
const TEST_BENCH = /^(chromium|debootstrap|protobuf-compiler|libprotoc|wireguard|linux-image|linux-headers|linux-modules|initramfs-tools|dracut)/;

function run(script: string, args: string[], env: Record<string, string> = {}): string[] {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SETTINGS.includes(k)));
  const out = execFileSync('bash', [path.join(ROOT, 'scripts', script), ...args], {
    cwd: ROOT, env: { ...base, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000,
  });
  return out.split('\n').filter((l) => l !== '');
}

beforeAll(() => {
  const lists = readdirSync('/var/lib/apt/lists').filter((f) => f.includes('_Packages'));
  if (lists.length === 0) throw new Error('Debian package lists are missing in /var/lib/apt/lists: run apt-get update (scripts/setup-dev.sh does)');
});

describe('the runtime setup (npm run worker, npm run demo)', () => {
  it('installs Docker and a local Redis for the worker, and nothing the tests or a kernel bring', () => {
    expect(run('setup.sh', ['--print-packages'])).toEqual(['docker.io', 'redis-server']);
    const fresh = run('setup.sh', ['--simulate']);
    expect(fresh).toEqual(expect.arrayContaining(['docker.io', 'redis-server']));
    expect(fresh.filter((p) => TEST_BENCH.test(p))).toEqual([]);
  });

  it('leaves Redis out when the worker uses REDIS_URL, but not for the demo, which runs its own', () => {
    expect(run('setup.sh', ['--print-packages'], { REDIS_URL: 'redis://redis.example:6379' })).toEqual(['docker.io']);
    expect(run('setup.sh', ['--print-packages', '--local-redis'], { REDIS_URL: 'redis://redis.example:6379' })).toEqual(['docker.io', 'redis-server']);
  });

  it('installs bubblewrap for the process runtime, and no Docker when Docker is disabled', () => {
    expect(run('setup.sh', ['--print-packages'], { DOCKER_ENABLED: 'false' })).toEqual(['bubblewrap', 'redis-server']);
    expect(run('setup.sh', ['--print-packages'], { ALLOW_PROCESS_RUNTIME: 'true' })).toEqual(['docker.io', 'bubblewrap', 'redis-server']);
    // No task image to build without Docker, so no debootstrap either, registry or not.
    expect(run('setup.sh', ['--print-packages', '--no-registry'], { DOCKER_ENABLED: 'false' })).toEqual(['bubblewrap', 'redis-server']);
    const fresh = run('setup.sh', ['--simulate'], { DOCKER_ENABLED: 'false' });
    expect(fresh).toContain('bubblewrap');
    expect(fresh).not.toContain('docker.io');
    expect(fresh.filter((p) => TEST_BENCH.test(p))).toEqual([]);
  });

  it('adds only debootstrap where no registry gives the task image its base, and no kernel with it', () => {
    expect(run('setup.sh', ['--print-packages', '--no-registry'])).toEqual(['docker.io', 'redis-server', 'debootstrap']);
    const fresh = run('setup.sh', ['--simulate', '--no-registry']);
    expect(fresh).toEqual(expect.arrayContaining(['docker.io', 'redis-server', 'debootstrap']));
    expect(fresh.filter((p) => TEST_BENCH.test(p))).toEqual(['debootstrap']);
  });
});

describe('the development setup (npm test)', () => {
  it('installs what the tests use, without a kernel', () => {
    const dev = run('setup-dev.sh', ['--print-packages']);
    // Docker and Redis for the integration tests, bubblewrap for the process runtime,
    // chromium for the dashboard, debootstrap for the local base images, protoc for the
    // protocol check, wg for the VPN join, openssl for certificates, compose for its smoke test.
    expect(dev).toEqual(expect.arrayContaining(['docker.io', 'redis-server', 'bubblewrap', 'chromium', 'debootstrap',
      'protobuf-compiler', 'wireguard-tools', 'openssl', 'docker-compose']));
    const fresh = run('setup-dev.sh', ['--simulate']);
    expect(fresh).toEqual(expect.arrayContaining(dev));
    expect(fresh.filter((p) => /^(linux-image|linux-headers|linux-modules|initramfs-tools|dracut)/.test(p))).toEqual([]);
  });
});
