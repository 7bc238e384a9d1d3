import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DASHBOARD_COOKIE, loadDashboardToken, presentedToken, tokenMatches } from './dashboard-token';

describe('the dashboard token', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-token-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('is made once, 0600, in a new folder, and read back the same afterwards', async () => {
    const file = path.join(dir, 'sub', 'dashboard-token');
    const first = await loadDashboardToken({ dashboardTokenFile: file }, true);
    expect(first).toMatchObject({ created: true });
    expect(first!.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    const again = await loadDashboardToken({ dashboardTokenFile: file }, true);
    expect(again).toEqual({ token: first!.token, created: false });
  });

  it('is not made when the caller only reads (monitor, executor)', async () => {
    const file = path.join(dir, 'dashboard-token');
    expect(await loadDashboardToken({ dashboardTokenFile: file }, false)).toBeNull();
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a token file others may read, and one that holds no token', async () => {
    const file = path.join(dir, 'dashboard-token');
    await fs.writeFile(file, 'a'.repeat(40), { mode: 0o644 });
    await fs.chmod(file, 0o644);
    await expect(loadDashboardToken({ dashboardTokenFile: file }, true)).rejects.toThrow(/DASHBOARD_TOKEN_FILE: .* has mode 0644/);
    await fs.writeFile(file, 'short\n', { mode: 0o600 });
    await fs.chmod(file, 0o600);
    await expect(loadDashboardToken({ dashboardTokenFile: file }, true)).rejects.toThrow(/DASHBOARD_TOKEN_FILE: .* does not hold a token/);
  });

  it('takes DASHBOARD_TOKEN when set, and refuses a weak one', async () => {
    const file = path.join(dir, 'dashboard-token');
    const token = 'x'.repeat(32);
    expect(await loadDashboardToken({ DASHBOARD_TOKEN: token, dashboardTokenFile: file }, true)).toEqual({ token, created: false });
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/);
    await expect(loadDashboardToken({ DASHBOARD_TOKEN: 'secret', dashboardTokenFile: file }, true)).rejects.toThrow(/DASHBOARD_TOKEN: expected 32 to 256/);
  });

  it('is presented as a Bearer header or the login cookie, and compared exactly', () => {
    expect(presentedToken({ authorization: 'Bearer abc' }, {})).toBe('abc');
    expect(presentedToken({ authorization: 'bearer  abc ' }, {})).toBe('abc');
    expect(presentedToken({}, { [DASHBOARD_COOKIE]: 'def' })).toBe('def');
    expect(presentedToken({ authorization: 'Basic xyz' }, undefined)).toBeNull();
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abd', 'abc')).toBe(false);
    expect(tokenMatches('abcd', 'abc')).toBe(false);
    expect(tokenMatches('', 'abc')).toBe(false);
    expect(tokenMatches(null, 'abc')).toBe(false);
  });
});
