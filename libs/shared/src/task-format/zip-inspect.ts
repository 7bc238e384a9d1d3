import * as yauzl from 'yauzl';
import { resolveLayout, TaskLayout } from './entry-point';
import { MANIFEST_FILE, MANIFEST_MAX_BYTES, parseManifest, TaskManifest } from './task-manifest';
import { TaskFormatError } from './task-format.error';

export interface ZipLimits {
  maxEntries: number;
  maxUncompressedBytes: number;
}

export interface ZipSummary extends TaskLayout {
  entries: number;
  files: number;
  uncompressedBytes: number;
  /** The task's hivemind.json (beside its entry point), checked; null when it has none. */
  manifest: TaskManifest | null;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

export function isSymlinkEntry(entry: yauzl.Entry): boolean {
  const unixMode = (entry.externalFileAttributes >>> 16) & 0xffff;
  return (unixMode & S_IFMT) === S_IFLNK;
}

/** Checks one entry's name; returns the reason it is unsafe, or null. */
export function unsafePathReason(name: string): string | null {
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.includes('\\')) return 'contains a backslash';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'is an absolute path';
  if (name.split('/').some((part) => part === '..')) return 'climbs out of the task folder with ".."';
  return null;
}

function wrapYauzlError(err: Error): TaskFormatError {
  const m = err.message;
  if (/absolute path|invalid relative path|invalid characters in fileName/.test(m)) {
    return new TaskFormatError('UNSAFE_PATH', `the zip has an unsafe path: ${m}`);
  }
  return new TaskFormatError('NOT_A_ZIP', `task_zip is not a valid zip file: ${m}`);
}

/** Reads one small entry's content (at most `max` bytes; a larger one is refused by its declared size first). */
function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) return reject(wrapYauzlError(err ?? new Error('unreadable entry')));
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (e: Error) => reject(wrapYauzlError(e)));
      stream.on('end', () => resolve(Buffer.concat(chunks)));
    });
  });
}

/** The task's manifest, read from the zip and checked; null when the task root has none. */
async function readManifest(zip: yauzl.ZipFile, candidates: Map<string, yauzl.Entry>, root: string): Promise<TaskManifest | null> {
  const entry = candidates.get(`${root}${MANIFEST_FILE}`);
  if (!entry) return null;
  if (entry.uncompressedSize > MANIFEST_MAX_BYTES) {
    throw new TaskFormatError('BAD_MANIFEST', `${MANIFEST_FILE}: ${entry.uncompressedSize} bytes; a manifest may hold at most ${MANIFEST_MAX_BYTES}`);
  }
  return parseManifest(await readEntry(zip, entry));
}

/**
 * Reads the zip's central directory (no extraction) and checks it: entry count,
 * total uncompressed size, paths, symlinks and the entry point. The one file it
 * reads is the task's manifest (hivemind.json, a few bytes), which it checks too.
 */
export function inspectZip(buffer: Buffer, limits: ZipLimits): Promise<ZipSummary> {
  return new Promise((resolve, reject) => {
    if (!buffer || buffer.length === 0) {
      reject(new TaskFormatError('NOT_A_ZIP', 'task_zip is empty (0 bytes)'));
      return;
    }
    yauzl.fromBuffer(buffer, { lazyEntries: true, validateEntrySizes: true }, (openErr, zip) => {
      if (openErr || !zip) {
        reject(wrapYauzlError(openErr ?? new Error('unreadable')));
        return;
      }
      if (zip.entryCount > limits.maxEntries) {
        reject(
          new TaskFormatError('TOO_MANY_ENTRIES', `the zip has ${zip.entryCount} entries; at most ${limits.maxEntries} are allowed`),
        );
        zip.close();
        return;
      }
      const files: string[] = [];
      // Manifests at the top or one folder down: which one counts is known once the root is.
      const manifests = new Map<string, yauzl.Entry>();
      let total = 0;
      let failed = false;
      const fail = (e: TaskFormatError) => {
        if (failed) return;
        failed = true;
        zip.close();
        reject(e);
      };
      zip.on('error', (e: Error) => fail(wrapYauzlError(e)));
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName;
        const reason = unsafePathReason(name);
        if (reason) return fail(new TaskFormatError('UNSAFE_PATH', `the zip entry "${name}" ${reason}`));
        if (isSymlinkEntry(entry)) return fail(new TaskFormatError('SYMLINK', `the zip entry "${name}" is a symbolic link; links are not allowed`));
        total += entry.uncompressedSize;
        if (total > limits.maxUncompressedBytes) {
          return fail(
            new TaskFormatError(
              'TOO_LARGE',
              `the zip unpacks to more than ${limits.maxUncompressedBytes} bytes (the configured cap, ZIP_MAX_UNCOMPRESSED_MB)`,
            ),
          );
        }
        if (!name.endsWith('/')) {
          const file = name.replace(/^\.\//, '');
          files.push(file);
          if (file === MANIFEST_FILE || (file.endsWith(`/${MANIFEST_FILE}`) && file.split('/').length === 2)) manifests.set(file, entry);
        }
        zip.readEntry();
      });
      zip.on('end', () => {
        if (failed) return;
        if (files.length === 0) return fail(new TaskFormatError('EMPTY_ZIP', 'the zip holds no files'));
        const layout = resolveLayout(files);
        if (!layout) {
          return fail(
            new TaskFormatError(
              'NO_ENTRY_POINT',
              'no entry point: the zip needs run.sh, run.py, main.py, app.py, index.py, start.py or another .py file at its top (or in its single top folder)',
            ),
          );
        }
        readManifest(zip, manifests, layout.root).then(
          (manifest) => {
            zip.close();
            resolve({ ...layout, entries: zip.entryCount, files: files.length, uncompressedBytes: total, manifest });
          },
          (err: TaskFormatError) => fail(err),
        );
      });
      zip.readEntry();
    });
  });
}
