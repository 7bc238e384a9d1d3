import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadWorkerConfig } from '@hivemind/shared/config/worker-config';
import { createTaskStore, FsTaskStore, RedisTaskStore } from '@hivemind/shared/state/task-store';
import { openFixture, StateFixture } from './support';

// test/integration/task-store.test.ts covers the blob format (chunks, sizes, damage, the size
// cap); this file covers what the state folder's version adds: the store chosen from the
// config, its keys under the node's prefix, the TTL from TASK_STORE_TTL, and the local fallback.
describe('the task store from the config (state/task-store.ts) against real Redis', () => {
  let f: StateFixture;
  let dir: string;
  beforeEach(async () => {
    f = openFixture('store');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-state-store-'));
  });
  afterEach(async () => {
    await f.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('TASK_STORE=fs is the default and keeps nothing in Redis', async () => {
    const store = createTaskStore(loadWorkerConfig({ REDIS_PREFIX: f.keys.prefix, WORK_DIR: dir }), f.conn, f.keys);
    expect(store).toBeInstanceOf(FsTaskStore);
    const file = path.join(dir, 'r.zip');
    await fs.writeFile(file, 'zip bytes');
    await store.putResult('t1', file);
    expect(await f.raw.keys(`${f.keys.prefix}:*`)).toEqual([]);
    expect((await store.readResult('t1', file)).toString()).toBe('zip bytes');
  });

  it('TASK_STORE=redis keeps blobs under the node prefix with TASK_STORE_TTL, sized by TASK_STORE_MAX_MB', async () => {
    const config = loadWorkerConfig({ REDIS_PREFIX: f.keys.prefix, WORK_DIR: dir, TASK_STORE: 'redis', TASK_STORE_MAX_MB: '8', TASK_STORE_TTL: '120' });
    const store = createTaskStore(config, f.conn, f.keys);
    expect(store).toBeInstanceOf(RedisTaskStore);
    expect(store.maxBytes).toBe(8 * 1024 * 1024);
    const bytes = randomBytes(1000);
    const gatewayFile = path.join(dir, 'gw', 't1.zip');
    await fs.mkdir(path.dirname(gatewayFile), { recursive: true });
    await fs.writeFile(gatewayFile, bytes);
    await store.putTaskZip('t1', gatewayFile);
    expect(await f.raw.exists(f.keys.blob('task', 't1'))).toBe(1);
    const ttl = await f.raw.ttl(f.keys.blob('task', 't1'));
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    expect(await store.storing('t1')).toBe(false);
    const mine = path.join(dir, 'exec', 't1.zip');
    expect(await store.taskZipHere('t1', mine)).toEqual({ file: mine, fetched: true });
    expect((await fs.readFile(mine)).equals(bytes)).toBe(true);
    await store.removeTaskZip('t1');
    expect(await f.raw.exists(f.keys.blob('task', 't1'))).toBe(0);
  });

  it('a result not in the store is read from the local file (written before the store was switched on)', async () => {
    const store = createTaskStore(loadWorkerConfig({ REDIS_PREFIX: f.keys.prefix, WORK_DIR: dir, TASK_STORE: 'redis' }), f.conn, f.keys);
    const file = path.join(dir, 'old.zip');
    await fs.writeFile(file, 'old result');
    expect((await store.readResult('old', file)).toString()).toBe('old result');
    await expect(store.readResult('nowhere', path.join(dir, 'nowhere.zip'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
