import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface Cert {
  cert: string;
  key: string;
}

export interface TestPki {
  ca: Cert;
  server: Cert;
  client: Cert;
  /** A client certificate from another CA, which the node must not accept. */
  rogue: Cert;
}

const ossl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<Cert> {
  const c = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  ossl(['req', '-x509', ...EC, '-keyout', c.key, '-out', c.cert, '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return c;
}

async function makeLeaf(dir: string, name: string, ca: Cert): Promise<Cert> {
  const c = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  await fs.writeFile(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n');
  ossl(['req', ...EC, '-keyout', c.key, '-out', csr, '-subj', `/CN=${name}`]);
  ossl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', c.cert, '-days', '1', '-extfile', ext]);
  return c;
}

/** A throwaway CA with a server (localhost) and a client certificate, plus a rogue client. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  await fs.mkdir(dir, { recursive: true });
  const ca = await makeCa(dir, 'test-ca');
  const other = await makeCa(dir, 'rogue-ca');
  return {
    ca,
    server: await makeLeaf(dir, 'server', ca),
    client: await makeLeaf(dir, 'client', ca),
    rogue: await makeLeaf(dir, 'rogue', other),
  };
}
