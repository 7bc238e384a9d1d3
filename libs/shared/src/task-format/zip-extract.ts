import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as yauzl from 'yauzl';
import { ZipLimits, isSymlinkEntry, unsafePathReason } from './zip-inspect';
import { TaskFormatError } from './task-format.error';
import { errorMessage } from '../util/errors';

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, validateEntrySizes: true, autoClose: true }, (err, zip) =>
      err || !zip ? reject(new TaskFormatError('NOT_A_ZIP', `task zip unreadable: ${err?.message}`)) : resolve(zip),
    ),
  );
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, (err, stream) => (err || !stream ? reject(err) : resolve(stream))),
  );
}

/**
 * Unpacks the part of a zip under `root` into `dest`. Every entry is checked again
 * (path, symlink, running byte count), whatever the gateway checked before: the
 * bytes on disk are still untrusted. File modes keep only the owner's execute bit.
 */
export async function extractZip(file: string, root: string, dest: string, limits: ZipLimits & { signal?: AbortSignal }): Promise<number> {
  const signal = limits.signal;
  signal?.throwIfAborted();
  const zip = await openZip(file);
  await fs.mkdir(dest, { recursive: true });
  const destReal = await fs.realpath(dest);
  let written = 0;
  let entries = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (e: unknown) => {
        if (zip.isOpen) zip.close();
        reject(e);
      };
      zip.on('error', fail);
      zip.on('end', () => resolve());
      // The task's cancellation (a stop, the step's time budget) ends the unpacking.
      const onAbort = () => fail(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      zip.on('close', () => signal?.removeEventListener('abort', onAbort));
      zip.on('entry', (entry: yauzl.Entry) => {
        void (async () => {
          entries += 1;
          if (entries > limits.maxEntries) throw new TaskFormatError('TOO_MANY_ENTRIES', `the zip has more than ${limits.maxEntries} entries`);
          const name = entry.fileName;
          const reason = unsafePathReason(name);
          if (reason) throw new TaskFormatError('UNSAFE_PATH', `the zip entry "${name}" ${reason}`);
          if (isSymlinkEntry(entry)) throw new TaskFormatError('SYMLINK', `the zip entry "${name}" is a symbolic link`);
          const normalized = name.replace(/^\.\//, '');
          if (!normalized.startsWith(root)) return;
          const rel = normalized.slice(root.length);
          if (!rel) return;
          const target = path.resolve(destReal, rel);
          if (target !== destReal && !target.startsWith(destReal + path.sep)) {
            throw new TaskFormatError('UNSAFE_PATH', `the zip entry "${name}" resolves outside the workspace`);
          }
          if (rel.endsWith('/')) {
            await fs.mkdir(target, { recursive: true });
            return;
          }
          await fs.mkdir(path.dirname(target), { recursive: true });
          const unixMode = (entry.externalFileAttributes >>> 16) & 0o777;
          const mode = unixMode & 0o100 ? 0o755 : 0o644;
          const counter = new Transform({
            transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
              written += chunk.length;
              if (written > limits.maxUncompressedBytes) {
                cb(new TaskFormatError('TOO_LARGE', `the zip unpacks to more than ${limits.maxUncompressedBytes} bytes`));
              } else cb(null, chunk);
            },
          });
          // 'wx' refuses to follow or reuse anything already at the target.
          await fs.rm(target, { force: true });
          await pipeline(await openEntry(zip, entry), counter, createWriteStream(target, { flags: 'wx', mode }));
        })().then(
          () => (signal?.aborted ? fail(signal.reason) : zip.readEntry()),
          (e) => fail(signal?.aborted ? signal.reason : e instanceof TaskFormatError ? e : new TaskFormatError('NOT_A_ZIP', `task zip unreadable: ${errorMessage(e)}`)),
        );
      });
      zip.readEntry();
    });
  } finally {
    if (zip.isOpen) zip.close();
  }
  return written;
}
