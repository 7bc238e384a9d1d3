import * as yauzl from 'yauzl';

/**
 * The last `maxBytes` of one entry of a zip held in memory (e.g. task_logs.txt of a
 * result), or null when the zip has no such entry. Streams the entry, keeping only its tail.
 */
export function zipEntryTail(zip: Buffer, name: string, maxBytes: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, z) => {
      if (err || !z) return reject(err ?? new Error('unreadable zip'));
      let found = false;
      z.on('error', reject);
      z.on('end', () => {
        if (!found) resolve(null);
      });
      z.on('entry', (e: yauzl.Entry) => {
        if (e.fileName !== name) return z.readEntry();
        found = true;
        z.openReadStream(e, (err2, s) => {
          if (err2 || !s) return reject(err2 ?? new Error(`cannot read ${name}`));
          let tail = Buffer.alloc(0);
          s.on('data', (c: Buffer) => {
            tail = Buffer.concat([tail, c]);
            if (tail.length > maxBytes * 2) tail = tail.subarray(tail.length - maxBytes);
          });
          s.on('error', reject);
          s.on('end', () => {
            z.close();
            const cut = tail.length > maxBytes ? tail.subarray(tail.length - maxBytes) : tail;
            resolve(cut.toString('utf8'));
          });
        });
      });
      z.readEntry();
    });
  });
}
