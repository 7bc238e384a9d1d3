import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';

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

export interface LoggerOptions {
  level: string;
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

export function createLogger(service: string, opts: LoggerOptions): Logger {
  // Each multistream entry filters by its own level (info unless told): pass ours.
  const level = opts.level as pino.Level;
  const streams: pino.StreamEntry[] = [
    { level, stream: pino.destination({ dest: 1, sync: false }) },
    { level: 'warn', stream: recentProblems },
  ];
  if (opts.logDir) {
    mkdirSync(opts.logDir, { recursive: true });
    // pino-roll in a worker thread: numbered files, rotated by size and daily, oldest removed.
    const file = pino.transport({
      target: 'pino-roll',
      options: {
        file: path.join(path.resolve(opts.logDir), service),
        extension: '.log',
        size: `${opts.fileSizeMb ?? 10}m`,
        frequency: 'daily',
        mkdir: true,
        limit: { count: opts.fileCount ?? 5, removeOtherLogFiles: true },
      },
    }) as pino.DestinationStream;
    streams.push({ level, stream: file });
  }
  return pino(
    { level: opts.level, base: { service }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
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
