import { createWriteStream, constants as C, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ZipFile } from 'yazl';
import { CptEstimate, describeCpt } from '../earnings/cpt-estimate';
import { unsafePathReason } from './zip-inspect';

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

/**
 * A top-level workspace entry (file, folder with all it holds, link, anything) whose
 * name is one the worker writes is left out, so the zip never holds the name twice or
 * a folder under it and always unpacks. Compared the way case-insensitive file systems
 * (macOS, Windows) compare names, so it unpacks there too. The same name deeper down
 * (`sub/execution_log.txt`) collides with nothing and is packed.
 */
export function isReservedName(topLevelName: string): boolean {
  const folded = topLevelName.toLowerCase().replace(/[. ]+$/, '');
  return folded === EXECUTION_LOG || folded === TASK_LOGS || folded === TASK_STOPPED;
}

/** A file whose apparent size passes its allocated blocks by more than this is sparse and not read. */
export const SPARSE_SLACK_BYTES = 1024 * 1024;

/** Most "Not packed" entries execution_log.txt lists one by one. */
const NOT_PACKED_LISTED = 20;

const SAFE_NAME = /^[A-Za-z0-9._+@=~,/-]+$/;
// Control and format characters (bidi overrides, zero-width), and line/paragraph separators.
const INVISIBLE = /[\p{C}\p{Zl}\p{Zp}]/gu;

function escapeUnits(ch: string): string {
  let out = '';
  for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** Text made safe for one line: every control, format or line-breaking character as a \uXXXX escape. */
export function oneLine(text: string): string {
  return text.replace(INVISIBLE, escapeUnits);
}

/**
 * How a task-supplied name is written into execution_log.txt: as it is when made only
 * of plain characters (letters, digits, `._+@=~,/-`), otherwise quoted and escaped like
 * JSON (plus escapes for Unicode line separators and invisible characters), so a name
 * can never start a line of its own or pass for another one.
 */
export function shownName(name: string): string {
  return SAFE_NAME.test(name) ? name : oneLine(JSON.stringify(name));
}

export interface NotPacked {
  /** Path relative to the workspace; a folder ends in `/`. */
  name: string;
  /** Why: `unreadable`, `name reserved by the worker`, `sparse: N bytes apparent, M allocated`, ... */
  why: string;
}

/** What was left out of a result: the first entries, and how many in all. */
export class NotPackedList {
  readonly listed: NotPacked[] = [];
  total = 0;

  add(name: string, why: string): void {
    this.total += 1;
    if (this.listed.length < NOT_PACKED_LISTED) this.listed.push({ name, why });
  }
}

function notPackedLines(notPacked: NotPackedList | string[]): string[] {
  if (Array.isArray(notPacked)) {
    const list = new NotPackedList();
    for (const n of notPacked) list.add(n, 'unreadable');
    return notPackedLines(list);
  }
  const lines = notPacked.listed.map((n) => `Not packed (${oneLine(n.why)}): ${shownName(n.name)}`);
  const more = notPacked.total - notPacked.listed.length;
  if (more > 0) lines.push(`Not packed: and ${more} more`);
  return lines;
}

/**
 * The text of execution_log.txt: one `Key: value` line each, task-supplied text
 * escaped so it stays on its line. `notPacked` (a list, or names of unreadable files)
 * gives one `Not packed (why): name` line per entry, at most 20, then `and N more`.
 */
export function formatExecutionLog(r: ExecutionRecord, notPacked: NotPackedList | string[] = []): string {
  const secs = (r.finishedAt.getTime() - r.startedAt.getTime()) / 1000;
  return [
    `Task ID: ${oneLine(r.taskId)}`,
    `Status: ${r.status}`,
    `Reason: ${oneLine(r.reason)}`,
    `Exit code: ${r.exitCode === null ? 'none' : r.exitCode}`,
    `Start time: ${r.startedAt.toISOString()}`,
    `End time: ${r.finishedAt.toISOString()}`,
    `Duration: ${secs.toFixed(3)} s`,
    `Node: ${oneLine(r.nodeId)}`,
    `Entry point: ${shownName(r.entryPoint)}`,
    `Runtime: ${oneLine(r.runtime)}`,
    ...(r.frozenSeconds ? [`Paused for the owner: ${r.frozenSeconds.toFixed(1)} s (not counted toward the timeout)`] : []),
    ...notPackedLines(notPacked),
    ...(r.cpt ? [describeCpt(r.cpt)] : []),
    '',
  ].join('\n');
}

export type ResultBudgetKind = 'zip_too_large' | 'read_too_large';

/** Packing a result passed one of its limits; the partial zip was removed. */
export class ResultBudgetError extends Error {
  constructor(
    readonly kind: ResultBudgetKind,
    readonly limitBytes: number,
  ) {
    super(
      kind === 'zip_too_large'
        ? `the result zip passed its size limit of ${limitBytes} bytes`
        : `the workspace files to pack passed the limit of ${limitBytes} bytes read`,
    );
    this.name = 'ResultBudgetError';
  }
}

function sparseWhy(size: number, blocks: number): string | null {
  const allocated = blocks * 512;
  return size - allocated > SPARSE_SLACK_BYTES ? `sparse: ${size} bytes apparent, ${allocated} allocated` : null;
}

function abortIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

interface Walked {
  files: { rel: string; size: number }[];
  dirs: string[];
  notPacked: NotPackedList;
}

/**
 * Regular files and folders under dir, relative, without following links. Left out
 * (and listed): unreadable or sparse files, names the worker reserves, names that are
 * not UTF-8 or that a zip cannot hold safely. Links, sockets, devices and fifos are
 * left out silently, as before.
 */
async function walk(dir: string, signal: AbortSignal | undefined, out: Walked = { files: [], dirs: [], notPacked: new NotPackedList() }, rel = ''): Promise<Walked> {
  abortIfAborted(signal);
  let entries;
  try {
    entries = await fs.readdir(Buffer.from(path.join(dir, rel)), { withFileTypes: true, encoding: 'buffer' });
  } catch {
    return out;
  }
  const named = entries.map((e) => ({ e, name: e.name.toString('utf8') })).sort((a, b) => a.name.localeCompare(b.name));
  for (const { e, name } of named) {
    const r = rel ? `${rel}/${name}` : name;
    const shown = e.isDirectory() ? `${r}/` : r;
    if (!rel && isReservedName(name)) {
      out.notPacked.add(shown, 'name reserved by the worker');
      continue;
    }
    if (!Buffer.from(name, 'utf8').equals(e.name)) {
      if (e.isDirectory() || e.isFile()) out.notPacked.add(shown, 'name is not valid UTF-8');
      continue;
    }
    const unsafe = unsafePathReason(r);
    if (unsafe) {
      if (e.isDirectory() || e.isFile()) out.notPacked.add(shown, `name ${unsafe}`);
      continue;
    }
    if (e.isDirectory()) {
      out.dirs.push(r);
      await walk(dir, signal, out, r);
    } else if (e.isFile()) {
      const full = path.join(dir, r);
      const st = await fs.lstat(full).catch(() => null);
      if (!st?.isFile()) continue;
      const sparse = sparseWhy(st.size, st.blocks);
      if (sparse) {
        out.notPacked.add(r, sparse);
        continue;
      }
      const readable = await fs.access(full, C.R_OK).then(
        () => true,
        () => false,
      );
      if (readable) out.files.push({ rel: r, size: st.size });
      else out.notPacked.add(r, 'unreadable');
    }
  }
  return out;
}

export interface ResultZipInput {
  workspace: string;
  record: ExecutionRecord;
  /** Path of the task's log file (becomes task_logs.txt). */
  logFile: string;
  outFile: string;
  /** Packing stops with ResultBudgetError('zip_too_large') as soon as the zip passes this many bytes. */
  maxZipBytes?: number;
  /**
   * Most bytes read from workspace files in all (the worker's log does not count).
   * Past it packing stops with ResultBudgetError('read_too_large'); when the files'
   * sizes already add up to more, it stops before reading any.
   */
  maxReadBytes?: number;
  /** Aborting stops packing at once: the partial zip is removed and the signal's reason thrown. */
  signal?: AbortSignal;
}

/** Counts bytes through it and fails the pack once `over(total)` says so. */
function counter(onBytes: (n: number) => Error | null): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      const err = onBytes(chunk.length);
      if (err) cb(err);
      else cb(null, chunk);
    },
  });
}

/**
 * Writes the result zip: the workspace as the task left it (deflated, paths relative
 * to it), plus execution_log.txt, task_logs.txt and, for a stopped task,
 * task_stopped.txt. Written to a temporary name and renamed, so a reader never sees
 * half a zip; on any failure (a budget, an abort, a read error) the partial file is
 * removed. Sparse files are never read (see SPARSE_SLACK_BYTES); what was left out is
 * listed in execution_log.txt, which is written last so it also lists files that
 * changed while being packed. Returns the zip's size.
 */
export async function writeResultZip(input: ResultZipInput): Promise<number> {
  const { workspace, record, logFile, outFile, signal } = input;
  const maxZipBytes = input.maxZipBytes ?? Infinity;
  const maxReadBytes = input.maxReadBytes ?? Infinity;
  abortIfAborted(signal);
  const { files, dirs, notPacked } = await walk(workspace, signal);
  if (files.reduce((sum, f) => sum + f.size, 0) > maxReadBytes) throw new ResultBudgetError('read_too_large', maxReadBytes);
  abortIfAborted(signal);

  const zip = new ZipFile();
  // yazl types it as a plain ReadableStream; it is a PassThrough.
  const output = zip.outputStream as unknown as Readable;
  const sources = new Set<Readable>();
  let failure: unknown = null;
  const fail = (err: unknown) => {
    if (failure) return;
    failure = err;
    output.destroy(err instanceof Error ? err : new Error(String(err)));
    for (const s of sources) s.destroy();
  };
  let readBytes = 0;
  for (const d of dirs) zip.addEmptyDirectory(d);
  for (const { rel } of files) {
    const full = path.join(workspace, rel);
    zip.addReadStreamLazy(rel, { compress: true }, (cb) => {
      void openForPacking(full).then((handle) => {
        if (typeof handle === 'string' || failure) {
          if (typeof handle === 'string') notPacked.add(rel, handle);
          else void handle.close().catch(() => undefined);
          return cb(null, Readable.from([]));
        }
        const src = handle.createReadStream();
        sources.add(src);
        src.once('close', () => sources.delete(src));
        src.on('error', fail);
        const counted = counter((n) => {
          readBytes += n;
          return readBytes > maxReadBytes ? new ResultBudgetError('read_too_large', maxReadBytes) : null;
        });
        counted.on('error', fail);
        cb(null, src.pipe(counted));
      }, fail);
    });
  }
  // Last of the workspace's entries' turn: everything left out is known by now.
  zip.addReadStreamLazy(EXECUTION_LOG, { compress: true }, (cb) => cb(null, Readable.from([Buffer.from(formatExecutionLog(record, notPacked))])));
  zip.addReadStreamLazy(TASK_LOGS, { compress: true }, (cb) => {
    // A task that never printed has no log file: pack an empty one.
    fs.open(logFile, C.O_RDONLY).then(
      (handle) => {
        const src = handle.createReadStream();
        sources.add(src);
        src.once('close', () => sources.delete(src));
        src.on('error', fail);
        cb(null, src);
      },
      () => cb(null, Readable.from([])),
    );
  });
  if (record.status === 'Stopped') {
    zip.addBuffer(
      Buffer.from(`Task ${oneLine(record.taskId)} was stopped at ${record.finishedAt.toISOString()}: ${oneLine(record.reason)}\n`),
      TASK_STOPPED,
      { compress: true },
    );
  }
  zip.on('error', fail);
  zip.end();

  let zipBytes = 0;
  const zipCounter = counter((n) => {
    zipBytes += n;
    return zipBytes > maxZipBytes ? new ResultBudgetError('zip_too_large', maxZipBytes) : null;
  });
  zipCounter.on('error', fail);
  const onAbort = () => fail(new Error('result packing aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  // Each writer its own temporary name: two runs of one task must not interleave.
  const tmp = `${outFile}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.partial`;
  try {
    await fs.mkdir(path.dirname(outFile), { recursive: true });
    await pipeline(output, zipCounter, createWriteStream(tmp));
    abortIfAborted(signal);
    await fs.rename(tmp, outFile);
  } catch (err) {
    fail(err);
    await fs.rm(tmp, { force: true });
    if (signal?.aborted) throw signal.reason;
    throw failure ?? err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    for (const s of sources) s.destroy();
  }
  return (await fs.stat(outFile)).size;
}

/**
 * Opens a workspace file to pack, or says why it cannot be: O_NOFOLLOW so a file
 * swapped for a link after the walk is not followed, O_NONBLOCK so one swapped for a
 * fifo does not hang the open, and fstat so one swapped for something else, or made
 * sparse, is not read.
 */
async function openForPacking(full: string): Promise<FileHandle | string> {
  let handle: FileHandle;
  try {
    handle = await fs.open(full, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch {
    return 'changed while being packed (gone or unreadable); packed empty';
  }
  const st = await handle.stat().catch(() => null);
  const why = !st?.isFile() ? 'changed while being packed (no longer a file); packed empty' : sparseWhy(st.size, st.blocks);
  if (why) {
    await handle.close().catch(() => undefined);
    return st?.isFile() ? `${why}; packed empty` : why;
  }
  return handle;
}
