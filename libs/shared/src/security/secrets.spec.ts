import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveCredentials, storeCredentials } from './secrets';

describe('pool credentials', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-secrets-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));
  const base = () => ({ NODE_ID: 'alice', CREDENTIALS_FILE: path.join(dir, 'none.json') });

  it('takes NODE_PASSWORD first, then NODE_PASSWORD_FILE (trailing newline trimmed)', async () => {
    const file = path.join(dir, 'pw');
    await fs.writeFile(file, 's3cret\n');
    expect(resolveCredentials({ ...base(), NODE_PASSWORD: 'direct', NODE_PASSWORD_FILE: file })).toEqual({ nodeId: 'alice', password: 'direct' });
    expect(resolveCredentials({ ...base(), NODE_PASSWORD_FILE: file })).toEqual({ nodeId: 'alice', password: 's3cret' });
    expect(() => resolveCredentials({ ...base(), NODE_PASSWORD_FILE: path.join(dir, 'missing') })).toThrow(/NODE_PASSWORD_FILE: cannot read .*ENOENT/);
  });

  it('stores credentials with mode 0600 and reads them back', async () => {
    const file = path.join(dir, 'sub', 'credentials.json');
    await storeCredentials(file, { username: 'alice', password: 'stored' });
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(resolveCredentials({ NODE_ID: '', CREDENTIALS_FILE: file })).toEqual({ nodeId: 'alice', password: 'stored' });
  });

  it('refuses a credential file others can read', async () => {
    const file = path.join(dir, 'credentials.json');
    await storeCredentials(file, { username: 'alice', password: 'stored' });
    await fs.chmod(file, 0o644);
    expect(() => resolveCredentials({ NODE_ID: 'alice', CREDENTIALS_FILE: file })).toThrow(
      /CREDENTIALS_FILE: ".*credentials.json" has mode 0644; it holds a secret and must be readable by its owner only \(chmod 600/,
    );
  });

  it('says how to provide a missing password', () => {
    expect(() => resolveCredentials(base())).toThrow(/NODE_PASSWORD: is required by the gateway: set NODE_PASSWORD or NODE_PASSWORD_FILE, or run `npm run login`/);
    expect(() => resolveCredentials({ ...base(), NODE_ID: '' })).toThrow(/NODE_ID: is required/);
  });
});
