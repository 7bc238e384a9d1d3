import { StringDecoder } from 'node:string_decoder';
import { redactIndex } from './requirements-policy';

/** Characters of an unfinished line held back, so that a secret split across chunks is still seen whole. */
const HOLD = 512;
/** Characters of pip's (redacted) output kept to explain a failure. */
const TAIL = 16 * 1024;

/** user:password@ in any URL pip prints. */
const USERINFO = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/@]{1,256}@/g;

/**
 * The strings of an index or proxy URL that must not reach a log: the whole URL (shown
 * as its host), its password and user name, raw and decoded.
 */
export function secretsOf(url: string | undefined): { find: string; replace: string }[] {
  if (!url) return [];
  const out = [{ find: url, replace: redactIndex(url) }];
  try {
    const u = new URL(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url) ? url : `http://${url}`);
    // As pip prints it once its user info is taken out (its path may hold a token too).
    const bare = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
    if (u.pathname.length > 1) out.push({ find: bare, replace: u.host });
    for (const part of [u.password, u.username]) {
      if (!part) continue;
      let decoded = part;
      try {
        decoded = decodeURIComponent(part);
      } catch {
        /* keep it raw */
      }
      // A very short user name would mangle ordinary output; the URL pattern still strips it.
      for (const s of new Set([part, decoded])) if (part === u.password || s.length >= 4) out.push({ find: s, replace: '****' });
    }
  } catch {
    /* not a URL: the whole string is still replaced */
  }
  return out;
}

/**
 * pip's output on its way to the task's log: credentials of the index and proxy taken
 * out (pip itself masks only the password, and only in URLs). Streams, holding back at
 * most HOLD characters of an unfinished line; keeps the last TAIL characters for the
 * failure message.
 */
export class RedactedOutput {
  private readonly decoder = new StringDecoder('utf8');
  private readonly secrets: { find: string; replace: string }[];
  private readonly hold: number;
  private buf = '';
  private tailText = '';

  constructor(
    secrets: { find: string; replace: string }[],
    private readonly out: (chunk: Buffer) => void,
  ) {
    this.secrets = secrets.filter((s) => s.find).sort((a, b) => b.find.length - a.find.length);
    this.hold = Math.max(HOLD, ...this.secrets.map((s) => s.find.length));
  }

  readonly push = (chunk: Buffer): void => {
    this.buf += this.decoder.write(chunk);
    this.emit(false);
  };

  /** Sends what is held back (call when the run ended). */
  flush(): void {
    this.buf += this.decoder.end();
    this.emit(true);
  }

  /** The last output, redacted. */
  get tail(): string {
    return this.tailText;
  }

  redact(text: string): string {
    const literal = (t: string) => this.secrets.reduce((acc, s) => acc.split(s.find).join(s.replace), t);
    return literal(literal(text).replace(USERINFO, '$1'));
  }

  private emit(all: boolean): void {
    const text = this.redact(this.buf);
    const cut = all ? text.length : Math.max(text.lastIndexOf('\n') + 1, text.length - this.hold);
    this.buf = text.slice(cut);
    if (cut <= 0) return;
    const ready = text.slice(0, cut);
    this.tailText = (this.tailText + ready).slice(-TAIL);
    this.out(Buffer.from(ready, 'utf8'));
  }
}

/** pip's `ERROR:` lines, or else its last lines: what a failure message quotes. */
export function pipErrors(tail: string): string {
  const lines = tail.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => l.startsWith('ERROR:'));
  return (errors.length ? errors : lines.slice(-3)).join(' ').slice(0, 2000) || 'no output';
}

/** The requirements pip found nothing to download for (`No matching distribution found for X`). */
export function notFound(tail: string): string[] {
  return [...new Set([...tail.matchAll(/No matching distribution found for (\S+)/g)].map((m) => m[1]))];
}
