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
        // The files are written asynchronously: wait for the last line.
        const fs = require('node:fs');
        const path = require('node:path');
        const dir = process.argv[1];
        for (let t = 0; t < 600; t++) {
          const done = fs.readdirSync(dir).some((n) => fs.readFileSync(path.join(dir, n), 'utf8').includes('"last":true'));
          if (done) return;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error('the last line never reached a log file');
      })()
        .catch((err) => { console.error(err.message); process.exitCode = 1; })
        // The daily rotation's timer holds a service's process open, as it should: end here.
        .finally(() => process.exit());`;
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

  it('never splits a line between two files: three services, four writers each, 64 KB files, hundreds of rotations', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-logdir-'));
    const writers = 4;
    const perWriter = 4000;
    // Each service writes about 20 MB in lines of varying length, some with multi-byte
    // characters, from several writers at once; every file is kept, so every line can be read back.
    const script = `
      const { createLogger } = require(${JSON.stringify(path.join(ROOT, 'dist/libs/shared/src/logging/logger.js'))});
      const [dir, service] = process.argv.slice(1);
      const log = createLogger(service, { level: 'info', logDir: dir, fileSizeMb: 0.0625, fileCount: 1000 });
      const writer = async (w) => {
        const child = log.child({ w });
        for (let i = 0; i < ${perWriter}; i++) {
          child.info({ i, filler: (i % 3 === 0 ? 'é' : 'x').repeat(200 + ((i * 7919 + w * 104729) % 1800)) }, 'line');
          // A pause now and then, as a service's logging has: the file stream catches up and rotates.
          if (i % 4 === 0) await new Promise((r) => setTimeout(r, 1));
        }
      };
      (async () => {
        await Promise.all(Array.from({ length: ${writers} }, (_, w) => writer(w)));
        log.info({ last: true }, 'the end');
        const fs = require('node:fs');
        const path = require('node:path');
        for (let t = 0; t < 1200; t++) {
          const done = fs.readdirSync(dir).some((n) => n.startsWith(service + '.') && fs.readFileSync(path.join(dir, n), 'utf8').includes('"last":true'));
          if (done) return;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error('the last line never reached a log file');
      })()
        .catch((err) => { console.error(err.message); process.exitCode = 1; })
        // The daily rotation's timer holds a service's process open, as it should: end here.
        .finally(() => process.exit());`;
    const services = ['svc-a', 'svc-b', 'svc-c'];
    await Promise.all(services.map((s) => promisify(execFile)(process.execPath, ['-e', script, dir, s], { maxBuffer: 256 << 20 })));
    for (const service of services) {
      const files = (await fs.readdir(dir)).filter((n) => n.startsWith(`${service}.`));
      expect(files.length).toBeGreaterThan(50);
      const seen = new Set<string>();
      const broken: string[] = [];
      for (const name of files) {
        const text = await fs.readFile(path.join(dir, name), 'utf8');
        // Each file holds whole lines only: it ends with a newline, and each line is one JSON record.
        if (text !== '' && !text.endsWith('\n')) broken.push(`${name} ends mid-line`);
        for (const line of text.split('\n').filter(Boolean)) {
          try {
            const o = JSON.parse(line) as { w?: number; i?: number; last?: boolean };
            if (o.last) seen.add('last');
            else seen.add(`${o.w}:${o.i}`);
          } catch {
            broken.push(`${name}: ${line.slice(0, 60)}…`);
          }
        }
      }
      expect(broken).toEqual([]);
      // Nothing lost across the rotations.
      expect(seen.size).toBe(writers * perWriter + 1);
    }
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('keeps the files JSON when stdout is pretty (LOG_FORMAT=pretty)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-logdir-'));
    const script = `
      const { createLogger } = require(${JSON.stringify(path.join(ROOT, 'dist/libs/shared/src/logging/logger.js'))});
      const log = createLogger('svc', { level: 'info', format: 'pretty', logDir: process.argv[1] });
      log.info({ taskId: 't-1', password: 'pw-never-in-files' }, 'task accepted');
      log.warn({ last: true }, 'the end');
      setTimeout(() => process.exit(), 500);`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script, dir]);
    // stdout is for a person: not JSON records.
    expect(stdout.trim()).not.toBe('');
    for (const line of stdout.trim().split('\n')) expect(() => JSON.parse(line)).toThrow();
    const records = (await fs.readFile(path.join(dir, 'svc.1.log'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { taskId?: string; password?: string; last?: boolean });
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({ taskId: 't-1', password: '[redacted]' });
    expect(records[1].last).toBe(true);
    await fs.rm(dir, { recursive: true, force: true });
  });
});
