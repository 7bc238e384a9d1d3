import { Writable } from 'node:stream';
import pino from 'pino';
import { REDACT_PATHS } from './logger';

describe('log redaction', () => {
  it('never writes passwords, tokens or authorization headers', () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
    log.info({ password: 'pw-123', token: 'eyJhbGciOi.tok', nested: { token: 'eyJ2', password: 'pw-456' }, metadata: { authorization: 'Bearer eyJ3' } }, 'login');
    log.info({ secret: 'shared-789' }, 'secret');
    expect(out).not.toMatch(/pw-123|pw-456|eyJ|shared-789/);
    expect(out.match(/\[redacted\]/g)).toHaveLength(6);
  });
});
