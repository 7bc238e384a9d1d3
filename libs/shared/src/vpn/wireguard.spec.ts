import { generateKeyPair, interfaceAddress, publicKeyOf, wireguardAddress } from './wireguard';

const hex64 = (h: string) => Buffer.from(h, 'hex').toString('base64');

describe('WireGuard keys and config', () => {
  it('derives the public key as X25519 does (RFC 7748 section 6.1 vectors)', () => {
    expect(publicKeyOf(hex64('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))).toBe(
      hex64('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'),
    );
    expect(publicKeyOf(hex64('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'))).toBe(
      hex64('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'),
    );
  });

  it('generates clamped 32-byte keys in base64, like wg genkey', () => {
    for (let i = 0; i < 20; i++) {
      const { privateKey, publicKey } = generateKeyPair();
      expect(privateKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      expect(publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      const k = Buffer.from(privateKey, 'base64');
      expect(k[0] & 7).toBe(0);
      expect(k[31] & 128).toBe(0);
      expect(k[31] & 64).toBe(64);
      expect(publicKeyOf(privateKey)).toBe(publicKey);
    }
  });

  it('refuses a key that is not 32 bytes of base64, without echoing it', () => {
    expect(() => publicKeyOf('c2hvcnQ=')).toThrow(/the private key must be 32 bytes in base64/);
    expect(() => publicKeyOf('not base64 at all, certainly not a key!!!!!')).toThrow(/32 bytes/);
  });

  it('reads the [Interface] address, and finds a wg interface', () => {
    const conf = '[Interface]\nPrivateKey = x\nAddress = 10.8.0.7/24, fd00::7/64\n\n[Peer]\nAddress = 1.2.3.4\n';
    expect(interfaceAddress(conf)).toBe('10.8.0.7');
    expect(interfaceAddress('[Peer]\nAddress = 1.2.3.4\n')).toBeNull();
    const v4 = (address: string) => ({ address, family: 'IPv4' as const, internal: false, netmask: '255.255.255.0', mac: '', cidr: null });
    expect(wireguardAddress({ eth0: [v4('192.168.1.2')], wg1: [v4('10.9.0.2')], wg0: [v4('10.8.0.7')] })).toBe('10.8.0.7');
    expect(wireguardAddress({ eth0: [v4('192.168.1.2')] })).toBeNull();
  });
});
