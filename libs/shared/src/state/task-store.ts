import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Redis } from 'ioredis';
import type { WorkerConfig } from '../config/worker-config';
import { RedisKeys } from './redis-keys';

/**
 * Where task zips and result zips travel between the gateway and the executors.
 *
 * The gateway always writes a task's zip under its WORK_DIR, and an executor always
 * writes the result zip under its own; the store makes them reachable by the other side:
 *
 * - `fs` (TASK_STORE=fs, the default): the gateway and the executors share WORK_DIR
 *   (one machine, or a shared filesystem); the store does nothing more.
 * - `redis` (TASK_STORE=redis): the zips are also kept in Redis as chunked blobs, so
 *   executors on other machines, with WORK_DIRs of their own, need only Redis. A zip
 *   larger than TASK_STORE_MAX_MB is refused at admission (task) or sent with the logs
 *   only (result). Blobs are deleted when the task's files are, and expire after
 *   TASK_STORE_TTL as a backstop.
 *
 * Redis blobs: the gateway creates a task's (admission) and deletes it with the task's
 * files; an executor creates a result's and the gateway deletes it once delivered.
 */
export interface TaskStore {
  readonly kind: 'fs' | 'redis';
  /** Largest zip the store holds, in bytes. */
  readonly maxBytes: number;
  /** Why a zip of this size cannot be stored, or null. */
  sizeError(bytes: number, what: string): string | null;
  /** The gateway stored the task's zip at zipFile: make it reachable by every executor. */
  putTaskZip(taskId: string, zipFile: string): Promise<void>;
  /**
   * The task's zip as a file on this machine at `localFile` (WORK_DIR/incoming/<task>.zip):
   * the gateway's own file when this executor shares its WORK_DIR, else fetched from the store.
   */
  taskZipHere(taskId: string, localFile: string): Promise<{ file: string; fetched: boolean }>;
  /** True while the gateway is still putting the task's zip into the store. */
  storing(taskId: string): Promise<boolean>;
  removeTaskZip(taskId: string): Promise<void>;
  /** The executor wrote the result zip at resultFile: make it reachable by the gateway. */
  putResult(taskId: string, resultFile: string): Promise<void>;
  /** The result zip's bytes; an error with code ENOENT when it is nowhere. */
  readResult(taskId: string, resultFile: string): Promise<Buffer>;
  removeResult(taskId: string): Promise<void>;
}

export class TaskStoreError extends Error {}

function enoent(message: string): NodeJS.ErrnoException {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = 'ENOENT';
  return err;
}

export class FsTaskStore implements TaskStore {
  readonly kind = 'fs' as const;
  readonly maxBytes = Number.MAX_SAFE_INTEGER;
  sizeError(): string | null {
    return null;
  }
  async putTaskZip(): Promise<void> {}
  async taskZipHere(_taskId: string, localFile: string): Promise<{ file: string; fetched: boolean }> {
    return { file: localFile, fetched: false };
  }
  async storing(): Promise<boolean> {
    return false;
  }
  async removeTaskZip(): Promise<void> {}
  async putResult(): Promise<void> {}
  readResult(_taskId: string, resultFile: string): Promise<Buffer> {
    return fs.readFile(resultFile);
  }
  async removeResult(): Promise<void> {}
}

interface BlobMeta {
  size: number;
  chunks: number;
  sha256: string;
}

/** Chunk size of blobs in Redis (one HSET field each). */
export const BLOB_CHUNK_BYTES = 1024 * 1024;

/**
 * Blobs in Redis: one hash per blob, fields c0..cN-1 holding 1 MiB chunks and `meta`
 * ({size, chunks, sha256}) written last, so a reader never sees half a blob; the
 * reader checks the size and the hash.
 */
export class RedisTaskStore implements TaskStore {
  readonly kind = 'redis' as const;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    readonly maxBytes: number,
    private readonly ttlSec: number,
  ) {}

  private key(kind: 'task' | 'result', taskId: string): string {
    return this.keys.blob(kind, taskId);
  }

  sizeError(bytes: number, what: string): string | null {
    if (bytes <= this.maxBytes) return null;
    return `the ${what} is ${bytes} bytes; this node's task store (TASK_STORE=redis) holds at most ${this.maxBytes} bytes (TASK_STORE_MAX_MB)`;
  }

  async putBlob(key: string, file: string): Promise<void> {
    const st = await fs.stat(file);
    const err = this.sizeError(st.size, path.basename(file));
    if (err) throw new TaskStoreError(err);
    await this.redis.unlink(key);
    const hash = createHash('sha256');
    let i = 0;
    const stream = createReadStream(file, { highWaterMark: BLOB_CHUNK_BYTES });
    let pending: Buffer = Buffer.alloc(0);
    const flush = async (chunk: Buffer) => {
      hash.update(chunk);
      await this.redis.multi().hset(key, `c${i}`, chunk).expire(key, this.ttlSec).exec();
      i++;
    };
    for await (const data of stream) {
      pending = pending.length ? Buffer.concat([pending, data as Buffer]) : (data as Buffer);
      while (pending.length >= BLOB_CHUNK_BYTES) {
        await flush(pending.subarray(0, BLOB_CHUNK_BYTES));
        pending = pending.subarray(BLOB_CHUNK_BYTES);
      }
    }
    if (pending.length || i === 0) await flush(pending);
    const meta: BlobMeta = { size: st.size, chunks: i, sha256: hash.digest('hex') };
    await this.redis.multi().hset(key, 'meta', JSON.stringify(meta)).expire(key, this.ttlSec).exec();
  }

  async getBlob(key: string): Promise<Buffer | null> {
    const raw = await this.redis.hget(key, 'meta');
    if (!raw) return null;
    const meta = JSON.parse(raw) as BlobMeta;
    const parts: Buffer[] = [];
    for (let i = 0; i < meta.chunks; i++) {
      const part = await this.redis.hgetBuffer(key, `c${i}`);
      if (!part) throw new TaskStoreError(`blob ${key} lacks chunk ${i} of ${meta.chunks}`);
      parts.push(part);
    }
    const buf = Buffer.concat(parts);
    if (buf.length !== meta.size || createHash('sha256').update(buf).digest('hex') !== meta.sha256) {
      throw new TaskStoreError(`blob ${key} is corrupt: ${buf.length} bytes, expected ${meta.size} with sha256 ${meta.sha256}`);
    }
    return buf;
  }

  putTaskZip(taskId: string, zipFile: string): Promise<void> {
    return this.putBlob(this.key('task', taskId), zipFile);
  }

  async taskZipHere(taskId: string, localFile: string): Promise<{ file: string; fetched: boolean }> {
    // Same WORK_DIR as the gateway: the same filesystem, so its file is right here.
    if (await fs.stat(localFile).then((s) => s.isFile(), () => false)) return { file: localFile, fetched: false };
    const buf = await this.getBlob(this.key('task', taskId));
    if (!buf) throw new TaskStoreError(`the task's zip is neither at ${localFile} nor in the task store`);
    await fs.mkdir(path.dirname(localFile), { recursive: true });
    await fs.writeFile(`${localFile}.fetch`, buf, { mode: 0o600 });
    await fs.rename(`${localFile}.fetch`, localFile);
    return { file: localFile, fetched: true };
  }

  async storing(taskId: string): Promise<boolean> {
    const key = this.key('task', taskId);
    const [exists, hasMeta] = await Promise.all([this.redis.exists(key), this.redis.hexists(key, 'meta')]);
    return exists === 1 && hasMeta === 0;
  }

  async removeTaskZip(taskId: string): Promise<void> {
    await this.redis.unlink(this.key('task', taskId));
  }

  putResult(taskId: string, resultFile: string): Promise<void> {
    return this.putBlob(this.key('result', taskId), resultFile);
  }

  async readResult(taskId: string, resultFile: string): Promise<Buffer> {
    const buf = await this.getBlob(this.key('result', taskId));
    if (buf) return buf;
    // A result written before the store was switched on, on this machine.
    return fs.readFile(resultFile).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? enoent(`the result of ${taskId} is neither in the task store nor at ${resultFile}`) : err;
    });
  }

  async removeResult(taskId: string): Promise<void> {
    await this.redis.unlink(this.key('result', taskId));
  }
}

export const TASK_STORE = Symbol('TASK_STORE');

export function createTaskStore(config: WorkerConfig, redis: Redis, keys: RedisKeys): TaskStore {
  if (config.TASK_STORE === 'redis') return new RedisTaskStore(redis, keys, config.TASK_STORE_MAX_MB * 1024 * 1024, config.TASK_STORE_TTL);
  return new FsTaskStore();
}
