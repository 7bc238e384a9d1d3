import { promises as fs, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../config/env-parsers';
import { errorMessage } from '../util/errors';

export interface PoolCredentialsFile {
  username: string;
  password: string;
}

/** Reads a secret from a file (Docker secrets style), trimming the trailing newline. */
export function readSecretFile(file: string, variable: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError(`Invalid configuration:\n  ${variable}: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  }
}

/** A file the worker stores secrets in must be private: refuse one that others may read. */
export function assertPrivateFile(file: string, variable: string): void {
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new ConfigError(
      `Invalid configuration:\n  ${variable}: "${file}" has mode ${mode.toString(8).padStart(4, '0')}; it holds a secret and must be readable by its owner only (chmod 600 ${file})`,
    );
  }
}

export function readStoredCredentials(file: string): PoolCredentialsFile | null {
  let st;
  try {
    st = statSync(file);
  } catch {
    return null;
  }
  if (!st.isFile()) throw new ConfigError(`Invalid configuration:\n  CREDENTIALS_FILE: "${file}" is not a file`);
  assertPrivateFile(file, 'CREDENTIALS_FILE');
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<PoolCredentialsFile>;
    if (typeof parsed.username === 'string' && typeof parsed.password === 'string') return { username: parsed.username, password: parsed.password };
  } catch {
    /* fall through */
  }
  throw new ConfigError(`Invalid configuration:\n  CREDENTIALS_FILE: "${file}" is not a {"username","password"} JSON file; delete it and run npm run login`);
}

/** Writes the credential file with 0600 from the first byte, atomically. */
export async function storeCredentials(file: string, creds: PoolCredentialsFile): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(creds), { mode: 0o600, flag: 'wx' });
  await fs.rename(tmp, file);
}

export interface SecretSources {
  NODE_ID: string;
  NODE_PASSWORD?: string;
  NODE_PASSWORD_FILE?: string;
  CREDENTIALS_FILE: string;
}

/**
 * The volunteer's pool credentials, from (first found): NODE_PASSWORD, the file named
 * by NODE_PASSWORD_FILE, or the credential file `npm run login` stored.
 */
export function resolveCredentials(c: SecretSources): { nodeId: string; password: string } {
  let password = c.NODE_PASSWORD ?? (c.NODE_PASSWORD_FILE ? readSecretFile(c.NODE_PASSWORD_FILE, 'NODE_PASSWORD_FILE') : undefined);
  let nodeId = c.NODE_ID;
  if (password === undefined) {
    const stored = readStoredCredentials(path.resolve(c.CREDENTIALS_FILE));
    if (stored && (!nodeId || nodeId === stored.username)) {
      nodeId = stored.username;
      password = stored.password;
    }
  }
  const missing = [
    !nodeId && "NODE_ID: is required by the gateway (the volunteer's Node Pool username)",
    password === undefined &&
      'NODE_PASSWORD: is required by the gateway: set NODE_PASSWORD or NODE_PASSWORD_FILE, or run `npm run login` once to store it',
  ].filter(Boolean);
  if (missing.length) throw new ConfigError(`Invalid configuration:\n  ${missing.join('\n  ')}`);
  return { nodeId, password: password as string };
}
