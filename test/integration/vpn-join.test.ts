import { execFile, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { AddressInfo } from 'node:net';
import { ROOT } from '../support/stack';

const CLI = path.join(ROOT, 'dist/apps/gateway/src/vpn-join.js');
const PRIVATE = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=';
const CONFIG = `[Interface]\nPrivateKey = ${PRIVATE}\nAddress = 10.8.0.7/24\nDNS = 10.8.0.1\n\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nEndpoint = vpn.example.org:51820\nAllowedIPs = 10.8.0.0/24\nPersistentKeepalive = 25\n`;

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** npm run vpn-join against a local HTTPS master with a self-signed certificate. */
describe('vpn-join', () => {
  let dir: string;
  /** A self-signed certificate for localhost, as a master without a public CA would have. */
  const cert = { cert: '', key: '' };
  let server: https.Server;
  let url: string;
  const requests: { method?: string; url?: string; type?: string; body: string }[] = [];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-vpn-'));
    cert.cert = path.join(dir, 'master.pem');
    cert.key = path.join(dir, 'master.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', cert.key, '-out', cert.cert,
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'pipe' });
    server = https.createServer({ cert: await fs.readFile(cert.cert), key: await fs.readFile(cert.key) }, (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        requests.push({ method: req.method, url: req.url, type: req.headers['content-type'], body });
        const reply = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
        if (req.url !== '/api/vpn/join' || req.method !== 'POST') return reply(404, { success: false, message: 'not found' });
        const name = (JSON.parse(body) as { client_name: string }).client_name;
        if (name === 'taken') return reply(409, { success: false, message: 'client name taken' });
        if (name === 'garbled') return res.writeHead(200).end('<html>oops</html>');
        return reply(200, { success: true, config: CONFIG });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://localhost:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('posts the node id, writes wg0.conf with mode 0600, and prints the exact steps when not bringing it up', async () => {
    const out = path.join(dir, 'a', 'wg0.conf');
    // A file left readable by others is replaced by a private one.
    await fs.mkdir(path.dirname(out), { recursive: true });
    await fs.writeFile(out, 'old', { mode: 0o644 });
    requests.length = 0;
    const r = await run([url, '--ca', cert.cert, '--node-id', 'alice', '--out', out, '--no-up']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(requests).toEqual([{ method: 'POST', url: '/api/vpn/join', type: 'application/json', body: '{"client_name":"alice"}' }]);
    expect((await fs.stat(out)).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(out, 'utf8')).toBe(CONFIG);
    expect(r.stdout).toContain(`Joined the VPN as alice: config written to ${out} (mode 0600), address 10.8.0.7.`);
    expect(r.stdout).toContain('The tunnel is not brought up (--no-up).');
    expect(r.stdout).toContain(`  sudo install -m 600 ${out} /etc/wireguard/wg0.conf\n  sudo wg-quick up wg0\n`);
    expect(r.stdout).toContain('ADVERTISE_HOST=10.8.0.7');
    expect(r.stdout + r.stderr).not.toContain(PRIVATE);
  });

  it('takes the node id from NODE_ID and the URL from --vpn-join', async () => {
    requests.length = 0;
    const r = await run(['--vpn-join', `${url}/`, '--ca', cert.cert, '--out', path.join(dir, 'b', 'wg0.conf'), '--no-up'], { NODE_ID: 'bob' });
    expect(r.code).toBe(0);
    expect(requests.map((q) => q.body)).toEqual(['{"client_name":"bob"}']);
  });

  it('says why a join failed and writes nothing', async () => {
    const out = path.join(dir, 'c', 'wg0.conf');
    const cases: [string[], RegExp][] = [
      [['--node-id', 'taken', '--ca', cert.cert], /^vpn join failed: the master refused the join \(HTTP 409\): client name taken\n$/],
      [['--node-id', 'garbled', '--ca', cert.cert], /answered HTTP 200 with something that is not JSON: "<html>oops<\/html>"/],
      // The master's certificate is self-signed: not trusted without --ca.
      [['--node-id', 'alice'], /^vpn join failed: could not reach https:\/\/localhost:\d+\/api\/vpn\/join: .*certificate/],
      [['--ca', cert.cert], /no node id: pass --node-id or set NODE_ID/],
    ];
    for (const [args, msg] of cases) {
      const r = await run([url, ...args, '--out', out, '--no-up']);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(msg)]);
    }
    const bad = await run(['ftp://x', '--node-id', 'a', '--out', out]);
    expect(bad.stderr).toContain('the master URL must be http:// or https://, got ftp:');
    await expect(fs.stat(out)).rejects.toThrow();
  });

  it('without a master URL, generates a key pair as wg does and prints only the public key', async () => {
    const out = path.join(dir, 'd', 'wg0.conf');
    const r = await run(['--out', out]);
    expect(r.code).toBe(0);
    const publicKey = /Public key \(give this to the VPN's administrator\):\n([A-Za-z0-9+/]{43}=)\n/.exec(r.stdout)?.[1];
    expect(publicKey).toBeDefined();
    const keyFile = path.join(dir, 'd', 'private.key');
    expect((await fs.stat(keyFile)).mode & 0o777).toBe(0o600);
    const privateKey = (await fs.readFile(keyFile, 'utf8')).trim();
    expect(privateKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(r.stdout).not.toContain(privateKey);
    // WireGuard's own tool derives the same public key (scripts/setup.sh installs wireguard-tools).
    expect(execFileSync('wg', ['pubkey'], { input: `${privateKey}\n` }).toString().trim()).toBe(publicKey);
  });
});
