import * as yauzl from 'yauzl';
import { resolveLayout, TaskLayout } from './entry-point';
import { TaskFormatError } from './task-format.error';

export interface ZipLimits {
  maxEntries: number;
  maxUncompressedBytes: number;
}

export interface ZipSummary extends TaskLayout {
  entries: number;
  files: number;
  uncompressedBytes: number;
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

/**
 * Reads the zip's central directory (no extraction) and checks it: entry count,
 * total uncompressed size, paths, symlinks and the entry point.
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
        if (!name.endsWith('/')) files.push(name.replace(/^\.\//, ''));
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
        resolve({ ...layout, entries: zip.entryCount, files: files.length, uncompressedBytes: total });
      });
      zip.readEntry();
    });
  });
}
