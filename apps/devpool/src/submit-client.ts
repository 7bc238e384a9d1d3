import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ZipFile } from 'yazl';
import { PoolClient } from '@hivemind/shared/proto/pool-client';

/** Zips a folder's regular files (paths relative to it) into a buffer. */
export async function zipFolder(dir: string): Promise<Buffer> {
  const zip = new ZipFile();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) {
        const st = await fs.stat(path.join(dir, r));
        zip.addFile(path.join(dir, r), r, { mode: st.mode });
      }
    }
  };
  await walk('');
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The part of `current` that is new since `previous`, where both are tails of one
 * growing log (the pool keeps only the last 10,240 characters).
 */
export function newLogText(previous: string, current: string): string {
  if (!previous) return current;
  if (current === previous) return '';
  for (let x = Math.max(0, previous.length - current.length); x < previous.length; x++) {
    const suffix = previous.slice(x);
    if (current.startsWith(suffix)) return current.slice(suffix.length);
  }
  return current;
}

/** Reads "Status: X" from an execution_log.txt. */
export function statusOf(executionLog: string): string | null {
  const m = /^Status: (\w+)/m.exec(executionLog);
  return m ? m[1] : null;
}

/** Uploads a task zip as its owner (MasterNodeService.UploadTask). */
export function uploadTask(pool: PoolClient, taskId: string, zip: Buffer, ask: { memoryGb?: number; cpuScore?: number } = {}) {
  return pool.call(pool.master, pool.master.uploadTask, (token) => ({
    task_id: taskId,
    task_zip: zip,
    memory_gb: ask.memoryGb ?? 0,
    cpu_score: ask.cpuScore ?? 0,
    gpu_score: 0,
    gpu_memory_gb: 0,
    location: '',
    gpu_name: '',
    token,
    host_count: 1,
  }));
}
