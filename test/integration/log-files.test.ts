import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../support/stack';

/**
 * LOG_DIR: each service's JSON log also goes to numbered files, rotated by size, the
 * oldest removed. Runs the built logger in its own process, as a service does.
 */
describe('file logging with rotation', () => {
  it('rotates at LOG_FILE_SIZE_MB and keeps LOG_FILE_COUNT old files besides the current one', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-logdir-'));
    const script = `
      const { createLogger } = require(${JSON.stringify(path.join(ROOT, 'dist/libs/shared/src/logging/logger.js'))});
      const log = createLogger('svc', { level: 'info', logDir: process.argv[1], fileSizeMb: 1, fileCount: 2 });
      const filler = 'x'.repeat(1000);
      (async () => {
        // About 8 MB: the 1 MB files roll over four times or more, even when a busy machine
        // lets pino-roll's batched writes carry a file well past 1 MB before it rotates.
        for (let i = 0; i < 8000; i++) {
          log.info({ i, filler, password: 'pw-never-in-files' }, 'line');
          if (i % 250 === 0) await new Promise((r) => setTimeout(r, 10));
        }
        log.info({ last: true }, 'the end');
        // The file side runs in a worker thread: wait for it to write the last line.
        const fs = require('node:fs');
        const path = require('node:path');
        const dir = process.argv[1];
        for (let t = 0; t < 600; t++) {
          const done = fs.readdirSync(dir).some((n) => fs.readFileSync(path.join(dir, n), 'utf8').includes('"last":true'));
          if (done) return;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error('the last line never reached a log file');
      })().catch((err) => { console.error(err.message); process.exitCode = 1; });`;
    await promisify(execFile)(process.execPath, ['-e', script, dir], { maxBuffer: 64 << 20 });
    const numbers = (await fs.readdir(dir))
      .map((n) => n.match(/^svc\.(\d+)\.log$/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    // Rotated at least three times (about 8 MB through 1 MB files), the oldest removed.
    expect(numbers[numbers.length - 1]).toBeGreaterThanOrEqual(4);
    expect(numbers.length).toBe(3);
    // The final line is kept (rotation opens the next file once one passes the size).
    const kept = (await Promise.all(numbers.map((n) => fs.readFile(path.join(dir, `svc.${n}.log`), 'utf8')))).join('');
    expect(kept).toContain('"last":true');
    expect(kept).toContain('"i":7999');
    expect(kept).not.toContain('"i":0,'); // the first lines went with the oldest file
    for (const n of numbers) {
      const text = await fs.readFile(path.join(dir, `svc.${n}.log`), 'utf8');
      expect(text).not.toContain('pw-never-in-files');
      expect(() => text.split('\n').filter(Boolean).map((l) => JSON.parse(l))).not.toThrow();
      // Rotation happens once a file passes the size, after a batched write.
      expect(Buffer.byteLength(text)).toBeLessThan(2.5 * 1024 * 1024);
    }
    await fs.rm(dir, { recursive: true, force: true });
  });
});
