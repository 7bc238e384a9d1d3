import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as https from 'node:https';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Joining the HiveMind WireGuard network: keys in the form `wg genkey`/`wg pubkey`
 * use (base64 of raw 32-byte X25519 keys), the master's join call, and the wg0.conf
 * it returns. The private key is never logged or printed.
 */

/** DER prefix of a PKCS#8 X25519 private key; the raw 32 bytes follow. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

function rawKey(b64: string, what: string): Buffer {
  const buf = Buffer.from(b64.trim(), 'base64');
  if (buf.length !== 32 || buf.toString('base64') !== b64.trim()) throw new Error(`${what} must be 32 bytes in base64 (as wg genkey writes), got ${JSON.stringify(b64.trim().slice(0, 8))}...`);
  return buf;
}

/** The public key of a base64 X25519 private key, as `wg pubkey` derives it. */
export function publicKeyOf(privateKeyB64: string): string {
  const raw = rawKey(privateKeyB64, 'the private key');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(key).export({ format: 'jwk' }) as { x: string };
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

/** A new key pair, as `wg genkey | tee private | wg pubkey` makes: a clamped random scalar. */
export function generateKeyPair(): { privateKey: string; publicKey: string } {
  const k = randomBytes(32);
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  const privateKey = k.toString('base64');
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

export interface JoinReply {
  success: boolean;
  config?: string;
  message?: string;
}

/**
 * POSTs {"client_name": nodeId} to `<masterUrl>/api/vpn/join`, as the deployed HiveMind
 * master expects, and returns the WireGuard config from its JSON reply. Throws with
 * what went wrong: the URL, the HTTP status, a reply that is not JSON, success=false
 * (with the master's message), or a config without an [Interface].
 */
export async function requestJoin(masterUrl: string, nodeId: string, opts: { ca?: Buffer; timeoutMs?: number } = {}): Promise<string> {
  let url: URL;
  try {
    url = new URL(masterUrl.replace(/\/+$/, '') + '/api/vpn/join');
  } catch {
    throw new Error(`the master URL ${JSON.stringify(masterUrl)} is not a URL (expected e.g. https://master.example.org)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`the master URL must be http:// or https://, got ${url.protocol}`);
  if (!nodeId) throw new Error('no node id: pass --node-id or set NODE_ID (the client name the master registers)');
  const body = JSON.stringify({ client_name: nodeId });
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: opts.timeoutMs ?? 30_000,
        ...(url.protocol === 'https:' && opts.ca ? { ca: opts.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 1 << 20) req.destroy(new Error('the reply is larger than 1 MB'));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no reply within ${(opts.timeoutMs ?? 30_000) / 1000} s`)));
    req.on('error', (err) => reject(new Error(`could not reach ${url.href}: ${err.message}`)));
    req.end(body);
  });
  let reply: JoinReply;
  try {
    reply = JSON.parse(text) as JoinReply;
  } catch {
    throw new Error(`${url.href} answered HTTP ${status} with something that is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (status < 200 || status >= 300 || !reply.success) {
    throw new Error(`the master refused the join (HTTP ${status}): ${reply.message ?? (reply as { error?: string }).error ?? 'no message'}`);
  }
  if (typeof reply.config !== 'string' || !/^\s*\[Interface\]/m.test(reply.config)) {
    throw new Error('the master said success but its reply has no WireGuard config with an [Interface] section');
  }
  return reply.config.endsWith('\n') ? reply.config : `${reply.config}\n`;
}

/** The first address of the config's [Interface] (without the prefix length), or null. */
export function interfaceAddress(config: string): string | null {
  let inInterface = false;
  for (const raw of config.split(/\r?\n/)) {
    const line = raw.replace(/#.*/, '').trim();
    if (/^\[.+\]$/.test(line)) inInterface = line.toLowerCase() === '[interface]';
    const m = /^Address\s*=\s*(.+)$/i.exec(line);
    if (inInterface && m) return m[1].split(',')[0].trim().replace(/\/\d+$/, '') || null;
  }
  return null;
}

/** Writes the config readable by its owner only (0600), also when the file was there before. */
export async function writePrivateFile(file: string, content: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.partial`;
  await fs.writeFile(tmp, content, { mode: 0o600 });
  await fs.chmod(tmp, 0o600);
  await fs.rename(tmp, file);
}

/** The IPv4 address of the WireGuard interface (wg0, else another wg*), if one is up. */
export function wireguardAddress(ifaces = os.networkInterfaces()): string | null {
  const names = Object.keys(ifaces).filter((n) => /^wg/.test(n)).sort((a, b) => (a === 'wg0' ? -1 : b === 'wg0' ? 1 : a.localeCompare(b)));
  for (const n of names) {
    const v4 = (ifaces[n] ?? []).find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  return null;
}
