import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import IORedis from 'ioredis';
import { RedisKeys } from '@hivemind/shared/state/redis-keys';
import { BLOB_CHUNK_BYTES, FsTaskStore, RedisTaskStore, TaskStoreError } from '@hivemind/shared/state/task-store';
import { redisUrl, uniquePrefix } from '../support/stack';

/**
 * The Redis-backed task store against a real Redis. The store is the repository of the
 * blobs: this test of it reads and writes the blobs' keys itself (RedisKeys.blob) where
 * it checks their layout in Redis (chunks, TTL) or damages them, which nothing else offers.
 */
describe('RedisTaskStore', () => {
  let redis: IORedis;
  let dir: string;
  let store: RedisTaskStore;
  const prefix = uniquePrefix('store');
  const keys = new RedisKeys(prefix);

  beforeAll(async () => {
    redis = new IORedis(redisUrl());
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-store-'));
    store = new RedisTaskStore(redis, keys, 8 * 1024 * 1024, 3600);
  });

  afterAll(async () => {
    const left = await redis.keys(`${prefix}:*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it.each([0, 1, BLOB_CHUNK_BYTES - 1, BLOB_CHUNK_BYTES, BLOB_CHUNK_BYTES + 1, Math.floor(3.5 * BLOB_CHUNK_BYTES)])(
    'a %i-byte result goes in and comes out byte for byte, from another machine\'s point of view',
    async (size) => {
      const bytes = randomBytes(size);
      const file = path.join(dir, `r-${size}.zip`);
      await fs.writeFile(file, bytes);
      await store.putResult(`t${size}`, file);
      await fs.rm(file);
      const back = await store.readResult(`t${size}`, file);
      expect(back.equals(bytes)).toBe(true);
      expect(await redis.hlen(keys.blob('result', `t${size}`))).toBe(Math.max(1, Math.ceil(size / BLOB_CHUNK_BYTES)) + 1);
      expect(await redis.ttl(keys.blob('result', `t${size}`))).toBeGreaterThan(3500);
      await store.removeResult(`t${size}`);
      expect(await redis.exists(keys.blob('result', `t${size}`))).toBe(0);
    },
  );

  it('a task zip is fetched into the executor\'s own WORK_DIR unless it shares the gateway\'s', async () => {
    const bytes = randomBytes(2 * BLOB_CHUNK_BYTES + 10);
    const gatewayFile = path.join(dir, 'gw', 'incoming', 'task1.zip');
    await fs.mkdir(path.dirname(gatewayFile), { recursive: true });
    await fs.writeFile(gatewayFile, bytes);
    await store.putTaskZip('task1', gatewayFile);
    // Same WORK_DIR: the gateway's file is used as is.
    expect(await store.taskZipHere('task1', gatewayFile)).toEqual({ file: gatewayFile, fetched: false });
    // Another machine (another WORK_DIR, where the file is not): fetched from Redis.
    const mine = path.join(dir, 'exec', 'incoming', 'task1.zip');
    expect(await store.taskZipHere('task1', mine)).toEqual({ file: mine, fetched: true });
    expect((await fs.readFile(mine)).equals(bytes)).toBe(true);
    await store.removeTaskZip('task1');
    await expect(store.taskZipHere('task1', path.join(dir, 'exec', 'incoming', 'task1b.zip'))).rejects.toThrow("the task's zip is neither at");
  });

  it('refuses a zip above the cap, naming the setting', async () => {
    expect(store.sizeError(8 * 1024 * 1024, 'task zip')).toBeNull();
    expect(store.sizeError(8 * 1024 * 1024 + 1, 'task zip')).toBe(
      `the task zip is ${8 * 1024 * 1024 + 1} bytes; this node's task store (TASK_STORE=redis) holds at most ${8 * 1024 * 1024} bytes (TASK_STORE_MAX_MB)`,
    );
    const big = path.join(dir, 'big.zip');
    await fs.writeFile(big, Buffer.alloc(8 * 1024 * 1024 + 1));
    await expect(store.putResult('big', big)).rejects.toThrow(TaskStoreError);
    expect(await redis.exists(keys.blob('result', 'big'))).toBe(0);
  });

  it('a blob being written is "storing" and unreadable until its meta lands; a damaged one is refused', async () => {
    // Raw: a blob whose writer has stored a chunk but not yet its meta.
    await redis.hset(keys.blob('task', 'half'), 'c0', Buffer.from('partial'));
    expect(await store.storing('half')).toBe(true);
    await expect(store.taskZipHere('half', path.join(dir, 'half.zip'))).rejects.toThrow("the task's zip is neither at");

    const file = path.join(dir, 'ok.zip');
    await fs.writeFile(file, randomBytes(BLOB_CHUNK_BYTES + 5));
    await store.putResult('dmg', file);
    expect(await store.storing('dmg')).toBe(false);
    // Raw: damages a stored chunk, which no store method does.
    await redis.hset(keys.blob('result', 'dmg'), 'c1', Buffer.from('XXXXX'));
    await expect(store.readResult('dmg', file)).rejects.toThrow(/blob .*dmg is corrupt/);
  });

  it('a result in neither place is ENOENT (the gateway then gives up on it)', async () => {
    await expect(store.readResult('nowhere', path.join(dir, 'nowhere.zip'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(new FsTaskStore().readResult('nowhere', path.join(dir, 'nowhere.zip'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
