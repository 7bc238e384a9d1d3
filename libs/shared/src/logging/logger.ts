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
  'metadata.authorization',
];

export function createLogger(service: string, opts: { level: string; logDir?: string }): Logger {
  // Each multistream entry filters by its own level (info unless told): pass ours.
  const level = opts.level as pino.Level;
  const streams: pino.StreamEntry[] = [{ level, stream: pino.destination({ dest: 1, sync: false }) }];
  if (opts.logDir) {
    mkdirSync(opts.logDir, { recursive: true });
    streams.push({ level, stream: pino.destination({ dest: path.join(opts.logDir, `${service}.log`), mkdir: true, sync: false }) });
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
