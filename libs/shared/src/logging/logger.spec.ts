import { Writable } from 'node:stream';
import pino from 'pino';
import { createLogger, demoteRoutine, effectiveLevel, LogFormat, ProblemRing, REDACT_PATHS } from './logger';

function capture() {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { sink, text: () => out };
}

describe('log redaction', () => {
  it('never writes passwords, tokens or authorization headers', () => {
    const { sink, text } = capture();
    const log = pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
    log.info({ password: 'pw-123', token: 'eyJhbGciOi.tok', nested: { token: 'eyJ2', password: 'pw-456' }, metadata: { authorization: 'Bearer eyJ3' } }, 'login');
    log.info({ secret: 'shared-789' }, 'secret');
    expect(text()).not.toMatch(/pw-123|pw-456|eyJ|shared-789/);
    expect(text().match(/\[redacted\]/g)).toHaveLength(6);
  });

  it('blanks the dashboard token in request logs: Authorization header, cookie and Set-Cookie', () => {
    const { sink, text } = capture();
    const token = 'dash-TOKEN-abcdefghijklmnopqrstuvwxyz012345';
    const log = pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
    // The shape pino-http (nestjs-pino) logs a request and its response in.
    log.info(
      {
        req: { method: 'GET', url: '/api/status', headers: { authorization: `Bearer ${token}`, cookie: `hivemind_dashboard=${token}`, accept: '*/*' } },
        res: { statusCode: 303, headers: { 'set-cookie': `hivemind_dashboard=${token}; HttpOnly` } },
      },
      'request completed',
    );
    expect(text()).toContain('"url":"/api/status"');
    expect(text()).toContain('"accept":"*/*"');
    expect(text()).not.toContain(token);
    expect(text().match(/\[redacted\]/g)).toHaveLength(3);
  });
});

describe('routine Nest lines', () => {
  it("logs a transport client's connection notices at debug, and its errors as errors", () => {
    const lines = (level: string) => {
      const { sink, text } = capture();
      const log = pino({ level, hooks: { logMethod: demoteRoutine } }, sink);
      log.info({ context: 'ClientProxy' }, 'Connected to Redis. Subscribing to channels...');
      log.error({ context: 'ClientProxy' }, 'Connection is closed.');
      log.info({ context: 'RoutesResolver' }, 'mapped');
      return text().trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
    };
    expect(lines('info').map((l) => [l.level, l.msg])).toEqual([[50, 'Connection is closed.'], [30, 'mapped']]);
    expect(lines('debug').map((l) => [l.level, l.msg])).toEqual([[20, 'Connected to Redis. Subscribing to channels...'], [50, 'Connection is closed.'], [30, 'mapped']]);
  });
});

describe('log format', () => {
  it('refuses a format that is neither json nor pretty, naming it', () => {
    expect(() => createLogger('svc', { level: 'info', format: 'yaml' as LogFormat })).toThrow(/expected one of json, pretty, got "yaml"/);
  });
});

describe('log level', () => {
  it('--debug on the command line wins over LOG_LEVEL', () => {
    expect(effectiveLevel('info', ['node', 'main.js'])).toBe('info');
    expect(effectiveLevel('warn', ['node', 'main.js', '--debug'])).toBe('debug');
  });
});

describe('recent problems', () => {
  it('keeps the newest warnings and errors, newest first, bounded', () => {
    const ring = new ProblemRing(3);
    const log = pino({ level: 'warn' }, ring as unknown as pino.DestinationStream);
    log.warn({ taskId: 't1', err: 'disk slow' }, 'first');
    log.error({ reason: 'pool down' }, 'second');
    log.info('not kept');
    log.warn('third');
    log.fatal('fourth');
    const items = ring.list();
    expect(items.map((i) => i.msg)).toEqual(['fourth', 'third', 'second']);
    expect(items[2]).toMatchObject({ level: 'error', detail: 'pool down' });
    expect(items[0].level).toBe('fatal');
  });
});
