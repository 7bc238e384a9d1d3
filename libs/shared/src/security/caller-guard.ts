import { createHash, timingSafeEqual } from 'node:crypto';
import { promises as dns } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Metadata } from '@grpc/grpc-js';

/** Metadata key a pool that supports it sends the shared secret in. */
export const SECRET_METADATA_KEY = 'x-hivemind-pool-secret';

/** The caller's IP from grpc-js's peer string ("1.2.3.4:5", "[::1]:5", "ipv4:..."), or null. */
export function peerAddress(peer: string): string | null {
  const p = peer.replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  let ip = v6 ? v6[1] : p.replace(/:\d+$/, '');
  ip = ip.replace(/%.*$/, '');
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip)) ip = ip.slice(7);
  return isIP(ip) ? ip : null;
}

/** Builds a BlockList (used as an allow list) from IPs and CIDRs; a bad entry is named. */
export function parseAllowlist(entries: string[], variable = 'ALLOWED_POOL_ADDRESSES'): BlockList {
  const list = new BlockList();
  for (const raw of entries) {
    const e = raw.trim();
    if (!e) continue;
    const [addr, bits, extra] = e.split('/');
    const family = isIP(addr);
    const prefix = bits === undefined ? undefined : Number(bits);
    const max = family === 6 ? 128 : 32;
    if (!family || extra !== undefined || (prefix !== undefined && (!Number.isInteger(prefix) || prefix < 0 || prefix > max))) {
      throw new Error(`Invalid configuration:\n  ${variable}: "${e}" is not an IP address or CIDR (e.g. 203.0.113.7 or 10.0.0.0/8)`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, prefix, type);
  }
  return list;
}

const LOOPBACK = ['127.0.0.0/8', '::1/128'];

/**
 * The default allow list: every address the configured pool host resolves to, plus
 * loopback when the pool itself is on loopback.
 */
export async function defaultAllowlist(
  poolAddress: string,
  lookup: (host: string) => Promise<string[]> = async (h) => (await dns.lookup(h, { all: true })).map((a) => a.address),
): Promise<string[]> {
  const host = poolAddress.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  const addrs = isIP(host) ? [host] : await lookup(host);
  const loop = parseAllowlist(LOOPBACK);
  const onLoopback = addrs.some((a) => loop.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4'));
  return [...new Set([...addrs, ...(onLoopback ? LOOPBACK : [])])];
}

function digest(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

export type CallerVerdict = { ok: true; address: string } | { ok: false; reason: 'ADDRESS' | 'SECRET'; address: string; message: string };

/**
 * Decides who may push work to this node (ExecuteTask, StopTaskExecution): callers
 * from the allow list, carrying the shared secret when one is configured.
 */
export class CallerGuard {
  private secretDigest: Buffer | null;

  constructor(
    private allow: BlockList,
    public allowDescription: string[],
    secret?: string,
  ) {
    this.secretDigest = secret ? digest(secret) : null;
  }

  /** Replaces the allow list (the pool's address may resolve differently over time). */
  setAllowlist(allow: BlockList, description: string[]): void {
    this.allow = allow;
    this.allowDescription = description;
  }

  check(peer: string, metadata: Metadata): CallerVerdict {
    const address = peerAddress(peer);
    if (!address || !this.allow.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')) {
      return { ok: false, reason: 'ADDRESS', address: address ?? peer, message: `caller ${address ?? peer} is not an allowed Node Pool address` };
    }
    if (this.secretDigest) {
      const sent = metadata.get(SECRET_METADATA_KEY)[0];
      // Compare digests, so the comparison takes the same time whatever was sent.
      const ok = sent !== undefined && timingSafeEqual(digest(typeof sent === 'string' ? sent : Buffer.from(sent)), this.secretDigest);
      if (!ok) {
        return { ok: false, reason: 'SECRET', address, message: `caller ${address} did not present the pool's shared secret` };
      }
    }
    return { ok: true, address };
  }
}
