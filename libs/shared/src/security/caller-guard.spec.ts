import { Metadata } from '@grpc/grpc-js';
import { CallerGuard, defaultAllowlist, parseAllowlist, peerAddress, SECRET_METADATA_KEY } from './caller-guard';

const md = (secret?: string) => {
  const m = new Metadata();
  if (secret !== undefined) m.set(SECRET_METADATA_KEY, secret);
  return m;
};

describe('caller control', () => {
  it('reads the caller address from grpc-js peer strings', () => {
    expect(peerAddress('127.0.0.1:57714')).toBe('127.0.0.1');
    expect(peerAddress('ipv4:10.1.2.3:5000')).toBe('10.1.2.3');
    expect(peerAddress('[::1]:40000')).toBe('::1');
    expect(peerAddress('ipv6:[2001:db8::5]:1')).toBe('2001:db8::5');
    expect(peerAddress('[::ffff:192.0.2.9]:80')).toBe('192.0.2.9');
    expect(peerAddress('unix:/tmp/sock')).toBeNull();
  });

  it('allows listed IPs and CIDRs, v4 and v6, and nothing else', () => {
    const g = new CallerGuard(parseAllowlist(['203.0.113.7', '10.0.0.0/8', '2001:db8::/32']), []);
    expect(g.check('203.0.113.7:1', md()).ok).toBe(true);
    expect(g.check('10.200.1.1:1', md()).ok).toBe(true);
    expect(g.check('[2001:db8:1::9]:1', md()).ok).toBe(true);
    expect(g.check('[::ffff:10.0.0.1]:1', md()).ok).toBe(true);
    expect(g.check('203.0.113.8:1', md())).toEqual({
      ok: false,
      reason: 'ADDRESS',
      address: '203.0.113.8',
      message: 'caller 203.0.113.8 is not an allowed Node Pool address',
    });
    expect(g.check('127.0.0.1:1', md()).ok).toBe(false);
  });

  it('names a malformed allow list entry', () => {
    expect(() => parseAllowlist(['10.0.0.0/33'])).toThrow(/ALLOWED_POOL_ADDRESSES: "10.0.0.0\/33" is not an IP address or CIDR/);
    expect(() => parseAllowlist(['pool.example.org'])).toThrow(/"pool.example.org" is not an IP address/);
  });

  it('requires the shared secret when one is set', () => {
    const g = new CallerGuard(parseAllowlist(['127.0.0.1']), [], 'hunter2');
    expect(g.check('127.0.0.1:1', md('hunter2')).ok).toBe(true);
    expect(g.check('127.0.0.1:1', md('hunter3'))).toMatchObject({ ok: false, reason: 'SECRET' });
    expect(g.check('127.0.0.1:1', md('')).ok).toBe(false);
    expect(g.check('127.0.0.1:1', md()).ok).toBe(false);
  });

  it('defaults to the pool host\'s addresses, plus loopback when the pool is on loopback', async () => {
    expect(await defaultAllowlist('pool.example.org:50051', async () => ['198.51.100.4'])).toEqual(['198.51.100.4']);
    expect(await defaultAllowlist('localhost:50051', async () => ['127.0.0.1', '::1'])).toEqual(['127.0.0.1', '::1', '127.0.0.0/8', '::1/128']);
    expect(await defaultAllowlist('192.0.2.1:50051', async () => { throw new Error('no lookup for literal addresses'); })).toEqual(['192.0.2.1']);
  });
});
