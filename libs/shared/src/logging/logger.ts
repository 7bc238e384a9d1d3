import { accessSync, constants as fsConstants, mkdirSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';
import pinoRoll from 'pino-roll';
import type { SonicBoom } from 'sonic-boom';

/** Paths pino blanks out wherever they appear: secrets never reach a log line. */
export const REDACT_PATHS = [
  'password',
  'token',
  'authorization',
  'secret',
  '*.password',
  '*.token',
  '*.authorization',
  '*.secret',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'metadata.authorization',
];

/** How the log reads on stdout: one JSON record a line, or lines for a person (pino-pretty). */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  level: string;
  /** stdout only: files in `logDir` are JSON whatever the format. Default json. */
  format?: LogFormat;
  /** When set, the log also goes to rotated files `<logDir>/<service>.<n>.log`. */
  logDir?: string;
  /** Size at which a log file is rotated, in MB. */
  fileSizeMb?: number;
  /** Rotated files kept besides the current one. */
  fileCount?: number;
}

/** The log level: `--debug` on the command line wins over LOG_LEVEL. */
export function effectiveLevel(level: string, argv: string[] = process.argv): string {
  return argv.includes('--debug') ? 'debug' : level;
}

/** A warning or error this service logged lately (the dashboard's "errors and warnings"). */
export interface LoggedProblem {
  time: number;
  level: 'warn' | 'error' | 'fatal';
  msg: string;
  detail?: string;
  taskId?: string;
}

/**
 * Keeps the service's last warnings and errors in memory, as written (after
 * redaction): a pino stream entry at level warn.
 */
export class ProblemRing {
  private readonly items: LoggedProblem[] = [];
  constructor(private readonly max = 50) {}

  write(line: string): void {
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      const level = o.level === 60 ? 'fatal' : o.level === 50 ? 'error' : 'warn';
      const detail = ['err', 'reason', 'why'].map((k) => o[k]).find((v) => typeof v === 'string') as string | undefined;
      this.items.push({ time: Number(o.time) || Date.now(), level, msg: String(o.msg ?? ''), detail, taskId: typeof o.taskId === 'string' ? o.taskId : undefined });
      if (this.items.length > this.max) this.items.shift();
    } catch {
      /* not JSON: not ours */
    }
  }

  /** Newest first. */
  list(): LoggedProblem[] {
    return [...this.items].reverse();
  }
}

/** This process's recent warnings and errors. */
export const recentProblems = new ProblemRing();

/**
 * The rotated log files, written from this thread: pino-roll's numbered files,
 * rotated by size and daily, the oldest removed.
 *
 * A rotated file always ends at a line boundary: pino writes each line with
 * one `write()`, and pino-roll rotates on its file stream's 'drain', which
 * comes only once that stream has written every byte it was given. (Run as a
 * pino transport instead, in a worker thread, pino-roll is fed the chunks of
 * pino's shared ring buffer, which end wherever the buffer wraps, often
 * inside a line: a rotation between two chunks cut the line in two. That
 * ring buffer also loses lines holding multi-byte characters when it wraps.)
 *
 * pino-roll opens its first file asynchronously: lines logged until then wait
 * here, in order. At exit, what the stream still holds is written synchronously.
 *
 * The oldest files are removed here, each time a file has been opened: all but the
 * current one and the `keep` newest others. pino-roll's own `limit` lists the folder
 * right after asking for the next file, which may or may not be open yet, so it kept
 * one old file fewer at times.
 */
class RotatingFiles {
  private file: SonicBoom | null = null;
  private waiting: string[] = [];

  constructor(
    private readonly options: Parameters<typeof pinoRoll>[0] & { file: string; extension: string },
    private readonly keep: number,
  ) {
    pinoRoll(options).then(
      (file) => {
        this.file = file;
        // (SonicBoom sets `file` to the file it opened last; its types leave it out.)
        const removeOld = () => void this.removeOld((file as SonicBoom & { file: string }).file).catch(() => undefined);
        file.on('ready', removeOld);
        removeOld();
        for (const line of this.waiting) file.write(line);
        this.waiting = [];
        process.once('exit', () => {
          try {
            file.flushSync();
          } catch {
            // Exiting: nothing is left to report a failed last write to.
          }
        });
      },
      (err: unknown) => {
        // The service cannot keep its promise of log files: stop it, naming why.
        setImmediate(() => {
          throw new Error(`LOG_DIR: cannot open the log file ${options.file}${options.extension ?? ''}: ${err instanceof Error ? err.message : String(err)}`);
        });
      },
    );
  }

  write(line: string): void {
    if (this.file) this.file.write(line);
    else this.waiting.push(line);
  }

  /** Removes the numbered files (`<service>.<n>.log`) older than the `keep` newest besides `current`. */
  private async removeOld(current: string): Promise<void> {
    const dir = path.dirname(this.options.file);
    const base = path.basename(this.options.file);
    const numbered = (await fsp.readdir(dir))
      .map((name) => ({ name, n: name.startsWith(`${base}.`) && name.endsWith(this.options.extension) ? Number(name.slice(base.length + 1, -this.options.extension.length)) : NaN }))
      .filter((f) => Number.isInteger(f.n) && f.n >= 0 && path.join(dir, f.name) !== path.resolve(current))
      .sort((a, b) => b.n - a.n);
    await Promise.all(numbered.slice(this.keep).map((f) => fsp.rm(path.join(dir, f.name), { force: true })));
  }
}

/**
 * stdout for a person: pino-pretty, in this thread, one line an entry, with
 * the local time and without pid and hostname.
 */
function prettyStdout(): pino.DestinationStream {
  let pretty: (options: Record<string, unknown>) => pino.DestinationStream;
  try {
    pretty = require('pino-pretty') as typeof pretty;
  } catch {
    throw new Error('LOG_FORMAT=pretty needs the pino-pretty package, which is not installed (run npm install); LOG_FORMAT=json needs nothing');
  }
  return pretty({ destination: 1, sync: false, colorize: false, singleLine: true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname' });
}

/**
 * Nest contexts whose info lines are routine: logged at debug. Nest's transport client
 * (ClientProxy) announces every connection it opens, and the gateway's readiness check
 * of the event transport (Terminus' microservice ping) opens one on every probe.
 */
const DEBUG_CONTEXTS = new Set(['ClientProxy']);

export function demoteRoutine(this: Logger, args: Parameters<pino.LogFn>, method: pino.LogFn, level: number): void {
  const first = args[0] as { context?: unknown } | null;
  if (level === pino.levels.values.info && first && typeof first === 'object' && DEBUG_CONTEXTS.has(String(first.context))) {
    this.debug(...args);
    return;
  }
  method.apply(this, args);
}

export function createLogger(service: string, opts: LoggerOptions): Logger {
  // Each multistream entry filters by its own level (info unless told): pass ours.
  const level = opts.level as pino.Level;
  const format = opts.format ?? 'json';
  if (!LOG_FORMATS.includes(format)) throw new Error(`log format: expected one of ${LOG_FORMATS.join(', ')}, got "${String(format)}"`);
  const streams: pino.StreamEntry[] = [
    { level, stream: format === 'pretty' ? prettyStdout() : pino.destination({ dest: 1, sync: false }) },
    { level: 'warn', stream: recentProblems },
  ];
  if (opts.logDir) {
    const dir = path.resolve(opts.logDir);
    mkdirSync(dir, { recursive: true });
    accessSync(dir, fsConstants.W_OK);
    // Always JSON, whatever LOG_FORMAT says of stdout.
    const files = new RotatingFiles(
      { file: path.join(dir, service), extension: '.log', size: `${opts.fileSizeMb ?? 10}m`, frequency: 'daily', mkdir: true },
      opts.fileCount ?? 5,
    );
    streams.push({ level, stream: files });
  }
  return pino(
    { level: opts.level, base: { service }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, hooks: { logMethod: demoteRoutine } },
    pino.multistream(streams),
  );
}

/** Routes Nest's own log calls into pino. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string) {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
}

export const LOGGER = Symbol('LOGGER');
