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
        // About 5 MB: the 1 MB files roll over four times or more.
        for (let i = 0; i < 5000; i++) {
          log.info({ i, filler, password: 'pw-never-in-files' }, 'line');
          if (i % 250 === 0) await new Promise((r) => setTimeout(r, 10));
        }
        log.info({ last: true }, 'the end');
      })();`;
    await promisify(execFile)(process.execPath, ['-e', script, dir], { maxBuffer: 64 << 20 });
    const numbers = (await fs.readdir(dir))
      .map((n) => n.match(/^svc\.(\d+)\.log$/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    expect(numbers[numbers.length - 1]).toBeGreaterThanOrEqual(5);
    expect(numbers.length).toBe(3);
    // The final line is kept (rotation opens the next file once one passes the size).
    const kept = (await Promise.all(numbers.map((n) => fs.readFile(path.join(dir, `svc.${n}.log`), 'utf8')))).join('');
    expect(kept).toContain('"last":true');
    expect(kept).toContain('"i":4999');
    for (const n of numbers) {
      const text = await fs.readFile(path.join(dir, `svc.${n}.log`), 'utf8');
      expect(text).not.toContain('pw-never-in-files');
      expect(() => text.split('\n').filter(Boolean).map((l) => JSON.parse(l))).not.toThrow();
      if (n !== numbers[2]) expect(Buffer.byteLength(text)).toBeLessThan(1.2 * 1024 * 1024);
    }
    await fs.rm(dir, { recursive: true, force: true });
  });
});
