import * as yauzl from 'yauzl';

export interface UnzippedEntry {
  name: string;
  data: Buffer;
  compressionMethod: number;
  mode: number;
}

/** Reads every entry of a zip buffer into memory (test helper). */
export function unzip(buffer: Buffer): Promise<Map<string, UnzippedEntry>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buffer, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      const out = new Map<string, UnzippedEntry>();
      zip.on('error', reject);
      zip.on('end', () => resolve(out));
      zip.on('entry', (e: yauzl.Entry) => {
        if (e.fileName.endsWith('/')) {
          out.set(e.fileName, { name: e.fileName, data: Buffer.alloc(0), compressionMethod: e.compressionMethod, mode: e.externalFileAttributes >>> 16 });
          return zip.readEntry();
        }
        zip.openReadStream(e, (err2, s) => {
          if (err2 || !s) return reject(err2);
          const chunks: Buffer[] = [];
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => {
            out.set(e.fileName, { name: e.fileName, data: Buffer.concat(chunks), compressionMethod: e.compressionMethod, mode: e.externalFileAttributes >>> 16 });
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}
