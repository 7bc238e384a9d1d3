import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadDevpoolConfig } from './devpool-config';
import { isLoopbackHost, loadWorkerConfig } from './worker-config';
import { errorMessage } from '../util/errors';

describe('worker configuration', () => {
  it('has defaults for everything but the credentials', () => {
    const c = loadWorkerConfig({});
    expect(c.GRPC_PORT).toBe(50053);
    expect(c.NODE_POOL_ADDRESS).toBe('localhost:50051');
    expect(c.MAX_CONCURRENT_TASKS).toBe(2);
    expect(c.TASK_TIMEOUT).toBe(3600);
    expect(c.HEARTBEAT_INTERVAL).toBe(10);
    expect(c.RESULT_UPLOAD_GUARD).toBe(1);
    expect(c.RESULT_REFUSED_RETRY).toBe(86_400);
    expect(c.RESULT_MAX_READ_MB).toBe(8192);
    expect(c.maxMessageBytes).toBe(1024 * 1024 * 1024);
    expect(c.DOCKER_ENABLED).toBe(true);
    expect(c.ALLOW_PROCESS_RUNTIME).toBe(false);
    expect(c.cpuCores).toBe(os.cpus().length);
    expect(c.cpuScore).toBe(os.cpus().length * 100);
    expect(c.advertisePort).toBe(50053);
    expect(c.executorConcurrency).toBe(2);
  });

  it('reads the owner-first settings, and names WORK_SCHEDULE and the rule at fault', () => {
    const c = loadWorkerConfig({ WORK_SCHEDULE: 'Mon-Fri 18:00-08:00; Sat,Sun 00:00-24:00', CPU_ONLY: 'true', OWNER_BUSY_PAUSE_TASKS: 'yes' });
    expect(c.workSchedule?.intervals).toHaveLength(7);
    expect(c.CPU_ONLY).toBe(true);
    expect(c.OWNER_BUSY_PAUSE_TASKS).toBe(true);
    const d = loadWorkerConfig({});
    expect([d.workSchedule, d.CPU_ONLY, d.OWNER_BUSY_CPU_PERCENT, d.OWNER_BUSY_AFTER, d.OWNER_IDLE_AFTER]).toEqual([null, false, 70, 30, 60]);
    expect(() => loadWorkerConfig({ WORK_SCHEDULE: 'Mon-Fri 9:00-17:70' })).toThrow(
      'WORK_SCHEDULE: bad time "17:70" (00:00 to 24:00) in rule "Mon-Fri 9:00-17:70"',
    );
    expect(() => loadWorkerConfig({ OWNER_BUSY_CPU_PERCENT: '150' })).toThrow('OWNER_BUSY_CPU_PERCENT: expected a number between 0 and 100, got "150"');
  });

  it('caps cores and memory at the machine', () => {
    const c = loadWorkerConfig({ MAX_CPU_CORES: '1000', MAX_MEMORY_GB: '100000' });
    expect(c.cpuCores).toBe(os.cpus().length);
    expect(c.memoryGb).toBe(Math.floor(os.totalmem() / 1024 ** 3));
    expect(loadWorkerConfig({ MAX_CPU_CORES: '0.5' }).cpuCores).toBe(0.5);
  });

  it('names every bad variable and the form it expects', () => {
    let message = '';
    try {
      loadWorkerConfig({ MAX_CONCURRENT_TASKS: 'many', NODE_POOL_ADDRESS: 'nowhere', DOCKER_ENABLED: 'perhaps', TASK_USER: 'root' });
    } catch (err) {
      message = errorMessage(err);
    }
    expect(message).toContain('MAX_CONCURRENT_TASKS: expected an integer between 1 and 256, got "many"');
    expect(message).toContain('NODE_POOL_ADDRESS: expected host:port (e.g. localhost:50051), got "nowhere"');
    expect(message).toContain('DOCKER_ENABLED: expected true or false, got "perhaps"');
    expect(message).toContain('TASK_USER: expected uid:gid (numbers), got "root"');
  });
});

describe('exposure settings', () => {
  it('/metrics needs the token unless HTTP binds to loopback (METRICS_AUTH=auto), or as METRICS_AUTH says', () => {
    expect(loadWorkerConfig({}).metricsAuth).toBe(false);
    expect(loadWorkerConfig({ HTTP_HOST: '0.0.0.0' }).metricsAuth).toBe(true);
    expect(loadWorkerConfig({ HTTP_HOST: '::' }).metricsAuth).toBe(true);
    expect(loadWorkerConfig({ HTTP_HOST: '192.168.1.5', METRICS_AUTH: 'auto' }).metricsAuth).toBe(true);
    expect(loadWorkerConfig({ HTTP_HOST: '0.0.0.0', METRICS_AUTH: 'false' }).metricsAuth).toBe(false);
    expect(loadWorkerConfig({ HTTP_HOST: '127.0.0.1', METRICS_AUTH: 'true' }).metricsAuth).toBe(true);
    expect(() => loadWorkerConfig({ METRICS_AUTH: 'sometimes' })).toThrow('METRICS_AUTH: expected auto, true or false, got "sometimes"');
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect([h, isLoopbackHost(h)]).toEqual([h, true]);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.org', '::2', '128.0.0.1']) expect([h, isLoopbackHost(h)]).toEqual([h, false]);
  });

  it('puts REDIS_PASSWORD or REDIS_PASSWORD_FILE into REDIS_URL, and names what is wrong', () => {
    expect(loadWorkerConfig({}).REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(loadWorkerConfig({ REDIS_URL: 'redis://redis:6379', REDIS_PASSWORD: 'p@ss/w:rd' }).REDIS_URL).toBe('redis://:p%40ss%2Fw%3Ard@redis:6379');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-redis-pw-'));
    writeFileSync(path.join(dir, 'pw'), 'fromfile\n');
    expect(loadWorkerConfig({ REDIS_URL: 'rediss://user@redis:6380/2', REDIS_PASSWORD_FILE: path.join(dir, 'pw') }).REDIS_URL).toBe('rediss://user:fromfile@redis:6380/2');
    expect(() => loadWorkerConfig({ REDIS_PASSWORD_FILE: path.join(dir, 'missing') })).toThrow(/REDIS_PASSWORD_FILE: cannot read ".*missing" \(ENOENT\)/);
    expect(() => loadWorkerConfig({ REDIS_PASSWORD: 'a', REDIS_PASSWORD_FILE: path.join(dir, 'pw') })).toThrow('REDIS_PASSWORD: set REDIS_PASSWORD or REDIS_PASSWORD_FILE, not both');
    expect(() => loadWorkerConfig({ REDIS_URL: 'redis://:old@redis:6379', REDIS_PASSWORD: 'new' })).toThrow('REDIS_PASSWORD: REDIS_URL already carries a password');
    writeFileSync(path.join(dir, 'empty'), '\n');
    expect(() => loadWorkerConfig({ REDIS_PASSWORD_FILE: path.join(dir, 'empty') })).toThrow('REDIS_PASSWORD_FILE: the password is empty');
  });

  it('DASHBOARD_COOKIE_SECURE is off unless set (the cookie is Secure anyway when the login came over TLS)', () => {
    expect(loadWorkerConfig({}).DASHBOARD_COOKIE_SECURE).toBe(false);
    expect(loadWorkerConfig({ DASHBOARD_COOKIE_SECURE: 'true' }).DASHBOARD_COOKIE_SECURE).toBe(true);
  });
});

describe('devpool configuration', () => {
  it('parses users and refuses a malformed list', () => {
    const c = loadDevpoolConfig({ DEVPOOL_USERS: 'ann:pw:5,ben:pw2' });
    expect(c.users).toEqual([
      { userId: 1, username: 'ann', password: 'pw', balance: 5 },
      { userId: 2, username: 'ben', password: 'pw2', balance: 0 },
    ]);
    expect(() => loadDevpoolConfig({ DEVPOOL_USERS: 'justaname' })).toThrow(/DEVPOOL_USERS: expected name:password/);
  });

  it('picks task images by entry point and keeps them on the allowlist', () => {
    const d = loadWorkerConfig({});
    expect(d.taskImages).toEqual({ python: 'hivemind/task-runtime:latest', shell: 'hivemind/task-runtime:latest' });
    expect(d.allowedImages).toEqual(['hivemind/task-runtime:latest']);
    const two = loadWorkerConfig({ TASK_IMAGE: 'py:1', TASK_SHELL_IMAGE: 'sh:1' });
    expect(two.taskImages).toEqual({ python: 'py:1', shell: 'sh:1' });
    expect(two.allowedImages).toEqual(['py:1', 'sh:1']);
    expect(() => loadWorkerConfig({ TASK_IMAGE: 'py:1', TASK_IMAGE_ALLOWLIST: 'other:1' })).toThrow(
      'TASK_IMAGE_ALLOWLIST: must include the default task images; missing py:1',
    );
  });

  it('names task images for manifests (TASK_IMAGES) and keeps them on the allowlist', () => {
    expect(loadWorkerConfig({}).namedImages).toEqual({ default: 'hivemind/task-runtime:latest' });
    const ml = loadWorkerConfig({ TASK_IMAGES: 'default=hivemind/task-runtime:latest,ml=hivemind/task-ml:latest' });
    expect(ml.namedImages).toEqual({ default: 'hivemind/task-runtime:latest', ml: 'hivemind/task-ml:latest' });
    expect(ml.allowedImages).toEqual(['hivemind/task-runtime:latest', 'hivemind/task-ml:latest']);
    expect(() => loadWorkerConfig({ TASK_IMAGES: 'ml=hivemind/task-ml:latest', TASK_IMAGE_ALLOWLIST: 'hivemind/task-runtime:latest' })).toThrow(
      'TASK_IMAGES: ml=hivemind/task-ml:latest not on TASK_IMAGE_ALLOWLIST',
    );
    expect(() => loadWorkerConfig({ TASK_IMAGES: 'default=other:1' })).toThrow('TASK_IMAGES: "default" is TASK_IMAGE (hivemind/task-runtime:latest), not other:1');
    expect(() => loadWorkerConfig({ TASK_IMAGES: 'hivemind/task-ml:latest' })).toThrow(/TASK_IMAGES: "hivemind\/task-ml:latest" is not name=image/);
  });

  it('bounds the workspace quota by MAX_DISK_GB', () => {
    expect(loadWorkerConfig({}).workspaceQuotaBytes).toBe(20 * 1024 ** 3);
    expect(loadWorkerConfig({ WORKSPACE_QUOTA_MB: '100' }).workspaceQuotaBytes).toBe(100 * 1024 ** 2);
    expect(loadWorkerConfig({ WORKSPACE_QUOTA_MB: '999999', MAX_DISK_GB: '1' }).workspaceQuotaBytes).toBe(1024 ** 3);
  });
});
