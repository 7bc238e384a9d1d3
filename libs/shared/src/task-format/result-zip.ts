import { createWriteStream, constants as C, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ZipFile } from 'yazl';
import { CptEstimate, describeCpt } from '../earnings/cpt-estimate';

export type TaskOutcome = 'Success' | 'Failed' | 'Stopped';

export interface ExecutionRecord {
  taskId: string;
  status: TaskOutcome;
  reason: string;
  exitCode: number | null;
  startedAt: Date;
  finishedAt: Date;
  nodeId: string;
  entryPoint: string;
  runtime: string;
  /** The node's CPT estimate from the task's measured usage (absent when the task never ran). */
  cpt?: CptEstimate;
  /** Seconds the task spent paused for the machine's owner (not counted toward its timeout). */
  frozenSeconds?: number;
}

/** Names the worker writes at the top of every result zip; task files of the same name give way. */
export const EXECUTION_LOG = 'execution_log.txt';
export const TASK_LOGS = 'task_logs.txt';
export const TASK_STOPPED = 'task_stopped.txt';

export function formatExecutionLog(r: ExecutionRecord, notPacked: string[] = []): string {
  const secs = (r.finishedAt.getTime() - r.startedAt.getTime()) / 1000;
  const skipped = notPacked.length
    ? [`Not packed (unreadable): ${notPacked.slice(0, 20).join(', ')}${notPacked.length > 20 ? ` and ${notPacked.length - 20} more` : ''}`]
    : [];
  return [
    `Task ID: ${r.taskId}`,
    `Status: ${r.status}`,
    `Reason: ${r.reason}`,
    `Exit code: ${r.exitCode === null ? 'none' : r.exitCode}`,
    `Start time: ${r.startedAt.toISOString()}`,
    `End time: ${r.finishedAt.toISOString()}`,
    `Duration: ${secs.toFixed(3)} s`,
    `Node: ${r.nodeId}`,
    `Entry point: ${r.entryPoint}`,
    `Runtime: ${r.runtime}`,
    ...(r.frozenSeconds ? [`Paused for the owner: ${r.frozenSeconds.toFixed(1)} s (not counted toward the timeout)`] : []),
    ...skipped,
    ...(r.cpt ? [describeCpt(r.cpt)] : []),
    '',
  ].join('\n');
}

/** Regular files and folders under dir, relative, without following links; unreadable files apart. */
async function walk(dir: string, rel = ''): Promise<{ files: string[]; dirs: string[]; unreadable: string[] }> {
  const out = { files: [] as string[], dirs: [] as string[], unreadable: [] as string[] };
  let entries;
  try {
    entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      out.dirs.push(r);
      const sub = await walk(dir, r);
      out.files.push(...sub.files);
      out.dirs.push(...sub.dirs);
      out.unreadable.push(...sub.unreadable);
    } else if (e.isFile()) {
      const readable = await fs.access(path.join(dir, r), C.R_OK).then(
        () => true,
        () => false,
      );
      (readable ? out.files : out.unreadable).push(r);
    }
    // Links, sockets, devices and fifos a task left behind are not packed.
  }
  return out;
}

export interface ResultZipInput {
  workspace: string;
  record: ExecutionRecord;
  /** Path of the task's log file (becomes task_logs.txt). */
  logFile: string;
  outFile: string;
}

/**
 * Writes the result zip: the workspace as the task left it (deflated, paths relative
 * to it), plus execution_log.txt, task_logs.txt and, for a stopped task,
 * task_stopped.txt. Written to a temporary name and renamed, so a reader never sees
 * half a zip.
 */
export async function writeResultZip(input: ResultZipInput): Promise<number> {
  const { workspace, record, logFile, outFile } = input;
  const reserved = new Set([EXECUTION_LOG, TASK_LOGS, TASK_STOPPED]);
  const zip = new ZipFile();
  const { files, dirs, unreadable } = await walk(workspace);
  for (const d of dirs) zip.addEmptyDirectory(d);
  for (const f of files) {
    if (reserved.has(f)) continue;
    const full = path.join(workspace, f);
    zip.addReadStreamLazy(f, { compress: true }, (cb) => {
      // O_NOFOLLOW: a file swapped for a link after the walk is not followed.
      fs.open(full, C.O_RDONLY | C.O_NOFOLLOW).then(
        (handle) => cb(null, handle.createReadStream()),
        () => cb(null, Readable.from([])),
      );
    });
  }
  zip.addBuffer(Buffer.from(formatExecutionLog(record, unreadable)), EXECUTION_LOG, { compress: true });
  zip.addReadStreamLazy(TASK_LOGS, { compress: true }, (cb) => {
    // A task that never printed has no log file: pack an empty one.
    fs.open(logFile, C.O_RDONLY).then(
      (handle) => cb(null, handle.createReadStream()),
      () => cb(null, Readable.from([])),
    );
  });
  if (record.status === 'Stopped') {
    zip.addBuffer(
      Buffer.from(`Task ${record.taskId} was stopped at ${record.finishedAt.toISOString()}: ${record.reason}\n`),
      TASK_STOPPED,
      { compress: true },
    );
  }
  // A read error mid-file makes yazl emit 'error'; end the output with it, or the pipeline would wait forever.
  zip.on('error', (err: Error) => (zip.outputStream as unknown as { destroy(e: Error): void }).destroy(err));
  zip.end();
  // Each writer its own temporary name: two runs of one task must not interleave.
  const tmp = `${outFile}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.partial`;
  await fs.mkdir(path.dirname(outFile), { recursive: true });
  try {
    await pipeline(zip.outputStream, createWriteStream(tmp));
    await fs.rename(tmp, outFile);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  return (await fs.stat(outFile)).size;
}
