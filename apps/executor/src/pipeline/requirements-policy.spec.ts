import { checkRequirements, redactIndex } from './requirements-policy';

const SHA = 'a'.repeat(64);

function accepted(text: string): string {
  const r = checkRequirements(text);
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  return r.text;
}

function refused(text: string): string {
  const r = checkRequirements(text);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.text)}`);
  return r.reason;
}

describe('requirements.txt policy', () => {
  it('accepts PEP 508 requirements by name and hands pip a normalized file', () => {
    const text = [
      '# numbers',
      'numpy',
      'requests[socks, security] >= 2.0 , < 3   # trailing comment',
      'hmdemo==1.0',
      '',
      'Django (>=4.2,<5)',
      'pywin32 ; sys_platform == \'win32\'',
      'tomli>=1.1 ; python_version < "3.11" and (os_name == "posix" or extra == "toml")',
      'zope.interface~=5.4',
      'weird_name-2===1.0+local',
      '  ',
    ].join('\n');
    expect(accepted(text)).toBe(
      [
        'numpy',
        'requests[socks,security]>=2.0,<3',
        'hmdemo==1.0',
        'Django>=4.2,<5',
        'pywin32 ; sys_platform == "win32"',
        'tomli>=1.1 ; python_version < "3.11" and (os_name == "posix" or extra == "toml")',
        'zope.interface~=5.4',
        'weird_name-2===1.0+local',
        '',
      ].join('\n'),
    );
    const r = checkRequirements('a\nb[x]==1 ; os_name == "nt"\n');
    expect(r.ok && r.requirements).toEqual([
      { line: 1, name: 'a', extras: [], specifier: '', marker: null, hashes: [] },
      { line: 2, name: 'b', extras: ['x'], specifier: '==1', marker: 'os_name == "nt"', hashes: [] },
    ]);
  });

  it('accepts --hash options on a requirement line, across line continuations, with CRLF and a BOM', () => {
    const text = `\uFEFFhmdemo==1.0 \\\r\n    --hash=sha256:${SHA.toUpperCase()} \\\r\n    --hash sha512:${'b'.repeat(128)}\r\nother==2\r\n`;
    expect(accepted(text)).toBe(`hmdemo==1.0 --hash=sha256:${SHA} --hash=sha512:${'b'.repeat(128)}\nother==2\n`);
    const r = checkRequirements(text);
    expect(r.ok && r.requirements.map((x) => x.line)).toEqual([1, 4]);
  });

  it('accepts an empty file and one of comments only', () => {
    expect(accepted('')).toBe('');
    expect(accepted('# nothing\n\n   # still nothing\n')).toBe('');
  });

  it.each([
    ['a direct reference over https', 'pkg @ https://example.com/pkg-1.0-py3-none-any.whl', /direct reference/],
    ['a direct reference over http without spaces', 'pkg@http://10.0.0.1/x.whl', /direct reference/],
    ['a direct reference to a file', 'pkg @ file:///etc/passwd', /direct reference/],
    ['a direct reference with extras', 'pkg[extra] @ git+https://github.com/x/y', /direct reference/],
    ['a bare URL', 'https://example.com/pkg-1.0.tar.gz', /a URL is not allowed/],
    ['a bare VCS URL', 'git+https://github.com/x/y.git#egg=y', /a URL is not allowed/],
    ['a bare host path', 'example.com/pkg.whl', /local path/],
    ['a relative path', './pkg', /local path/],
    ['a parent path', '../pkg-1.0.tar.gz', /local path/],
    ['an absolute path', '/tmp/pkg.whl', /local path/],
    ['a home path', '~/pkg', /local path/],
    ['a local wheel by file name', 'pkg-1.0-py3-none-any.whl', /archive/],
    ['a local sdist by file name', 'pkg-1.0.tar.gz', /archive/],
    ['a local zip by file name', 'pkg.zip', /archive/],
    ['-e', '-e .', /editable/],
    ['--editable', '--editable=git+https://x/y#egg=y', /editable/],
    ['-r', '-r other.txt', /another requirements or constraints file/],
    ['--requirement', '--requirement=other.txt', /another requirements or constraints file/],
    ['-c', '-c constraints.txt', /another requirements or constraints file/],
    ['--index-url', '--index-url http://evil/simple', /--index-url is not allowed/],
    ['-i', '-i http://evil/simple', /-i is not allowed/],
    ['--extra-index-url', '--extra-index-url=http://evil/simple', /--extra-index-url is not allowed/],
    ['--find-links', '--find-links http://evil/', /--find-links is not allowed/],
    ['-f', '-f /tmp', /-f is not allowed/],
    ['--trusted-host', '--trusted-host evil', /--trusted-host is not allowed/],
    ['--no-index', '--no-index', /--no-index is not allowed/],
    ['--pre', '--pre', /the pip option --pre is not allowed/],
    ['--prefer-binary', '--prefer-binary', /the pip option --prefer-binary/],
    ['--use-feature', '--use-feature=truststore', /the pip option --use-feature/],
    ['an option after a requirement', 'pkg==1 --global-option=--evil', /option --global-option is not allowed on a requirement line/],
    ['an index option after a requirement', 'pkg==1 --index-url=http://evil/', /option --index-url is not allowed on a requirement line/],
    ['a bad hash', 'pkg==1 --hash=md5:abc', /not a hash/],
    ['a hash without a value', 'pkg==1 --hash', /not a hash/],
    ['an environment variable', 'pkg==${PIP_INDEX_URL}', /environment variables/],
    ['an environment variable in a marker', 'pkg ; os_name == "${PIP_PROXY}"', /environment variables/],
    ['a marker value with spaces and an option', 'pkg ; os_name == "a --index-url=http://evil/"', /--index-url is not allowed/],
    ['a marker value with spaces', 'pkg ; os_name == "a b"', /marker value "a b" has characters/],
    ['an unknown marker variable', 'pkg ; evil == "1"', /not a marker variable/],
    ['a marker without comparison', 'pkg ; python_version', /lacks a comparison/],
    ['an unclosed marker', 'pkg ; (os_name == "nt"', /unclosed/],
    ['a missing version', 'pkg==', /version is missing/],
    ['a dangling comma', 'pkg>=1,', /specifier is missing/],
    ['an unclosed paren', 'pkg (>=1', /closing "\)"/],
    ['unclosed extras', 'pkg[a', /closing "]"/],
    ['bad extras', 'pkg[a b]', /not valid names/],
    ['junk after a requirement', 'pkg==1 junk', /not a requirement/],
    ['a control character', 'pkg\u0000==1', /control characters/],
    ['a line separator', 'pkg\u2028==1', /control characters/],
  ])('refuses %s, naming the line', (_what, line, why) => {
    const reason = refused(`ok==1\n# fine\n${line}\n`);
    expect(reason).toMatch(/^line 3 "/);
    expect(reason).toContain(JSON.stringify(line).slice(1, 20));
    expect(reason).toMatch(why);
  });

  it('names every refused line, and the first line of a continued one', () => {
    const reason = refused('ok\n--extra-index-url http://probe/ \\\n  --trusted-host probe\npkg @ http://probe/x.whl\n');
    expect(reason).toMatch(/^line 2 ".*--extra-index-url is not allowed.*; line 4 "pkg @ http:\/\/probe\/x.whl": a direct reference/);
  });

  it('bounds the file size and the line count', () => {
    expect(refused('a\n'.repeat(40_000))).toMatch(/bytes; at most 65536 are allowed/);
    expect(refused('#\n'.repeat(1000))).toMatch(/1001 lines; at most 1000 are allowed/);
    expect(checkRequirements('a\nb\nc', { maxBytes: 100, maxLines: 2 })).toEqual({ ok: false, reason: 'it has 3 lines; at most 2 are allowed' });
    expect(refused(Buffer.from([0x61, 0xff, 0x0a]) as unknown as string)).toBe('it is not UTF-8 text');
  });

  it('lists at most ten refusals', () => {
    expect(refused('-r x\n'.repeat(15))).toMatch(/line 10 .*; and 5 more$/);
  });
});

describe('redactIndex', () => {
  it('shows the host and port only', () => {
    expect(redactIndex('https://user:s3cret@pypi.example.com:8443/private/simple?token=x')).toBe('pypi.example.com:8443');
    expect(redactIndex('http://10.0.0.5/simple')).toBe('10.0.0.5');
    expect(redactIndex('user:pw@proxy.lan:3128')).toBe('proxy.lan:3128');
    expect(redactIndex('proxy.lan:3128')).toBe('proxy.lan:3128');
    expect(redactIndex(undefined)).toBe("pypi.org (pip's default)");
    expect(redactIndex('http://[not a url')).not.toContain('not a url');
  });
});
