import { makeZip, makeZipWithRawName } from '../../../../test/support/zips';
import { TaskFormatError } from './task-format.error';
import { inspectZip } from './zip-inspect';

const limits = { maxEntries: 100, maxUncompressedBytes: 1024 * 1024 };

async function refusal(buf: Buffer, l = limits): Promise<TaskFormatError> {
  try {
    await inspectZip(buf, l);
  } catch (err) {
    if (err instanceof TaskFormatError) return err;
    throw err;
  }
  throw new Error('the zip was accepted');
}

describe('inspectZip', () => {
  it('accepts a task and reports its layout without extracting', async () => {
    const zip = await makeZip([
      { name: 'run.py', content: 'print("hi")' },
      { name: 'requirements.txt', content: 'requests\n' },
      { name: 'data/', dir: true },
      { name: 'data/input.csv', content: 'a,b\n1,2\n' },
    ]);
    const s = await inspectZip(zip, limits);
    expect(s.entry).toEqual({ file: 'run.py', kind: 'python' });
    expect(s.root).toBe('');
    expect(s.hasRequirements).toBe(true);
    expect(s.files).toBe(3);
    expect(s.uncompressedBytes).toBe(11 + 9 + 8);
  });

  it('finds the task inside a single top folder', async () => {
    const zip = await makeZip([
      { name: 'mytask/main.py', content: 'print(1)' },
      { name: 'mytask/lib/util.py', content: '' },
    ]);
    const s = await inspectZip(zip, limits);
    expect(s.root).toBe('mytask/');
    expect(s.entry.file).toBe('main.py');
  });

  it('refuses bytes that are not a zip', async () => {
    const e = await refusal(Buffer.from('this is not a zip file at all, just text'));
    expect(e.code).toBe('NOT_A_ZIP');
    expect(e.message).toMatch(/not a valid zip/);
  });

  it('refuses an empty buffer and a zip with no files', async () => {
    expect((await refusal(Buffer.alloc(0))).message).toMatch(/empty/);
    const e = await refusal(await makeZip([{ name: 'only-a-folder/', dir: true }]));
    expect(e.code).toBe('EMPTY_ZIP');
  });

  it('refuses ../ paths', async () => {
    const e = await refusal(await makeZipWithRawName('xx/evil.py', '../evil.py'));
    expect(e.code).toBe('UNSAFE_PATH');
    expect(e.message).toMatch(/\.\.\/evil\.py/);
  });

  it('refuses absolute paths', async () => {
    const e = await refusal(await makeZipWithRawName('xetc/passwd', '/etc/passwd'));
    expect(e.code).toBe('UNSAFE_PATH');
    expect(e.message).toMatch(/absolute/);
  });

  it('refuses symlink entries', async () => {
    const e = await refusal(await makeZip([{ name: 'run.py', content: 'x' }, { name: 'link', content: '/etc/passwd', mode: 0o120777 }]));
    expect(e.code).toBe('SYMLINK');
    expect(e.message).toMatch(/"link" is a symbolic link/);
  });

  it('refuses more entries than the cap', async () => {
    const items = Array.from({ length: 6 }, (_, i) => ({ name: `f${i}.py`, content: '' }));
    const e = await refusal(await makeZip(items), { maxEntries: 5, maxUncompressedBytes: 1e6 });
    expect(e.code).toBe('TOO_MANY_ENTRIES');
    expect(e.message).toMatch(/6 entries; at most 5/);
  });

  it('refuses a zip that unpacks past the size cap (a zip bomb) from the directory alone', async () => {
    const zip = await makeZip([{ name: 'run.py', content: 'x' }, { name: 'zeros.bin', content: Buffer.alloc(2 * 1024 * 1024) }]);
    expect(zip.length).toBeLessThan(64 * 1024);
    const e = await refusal(zip);
    expect(e.code).toBe('TOO_LARGE');
  });

  it('refuses a zip without an entry point', async () => {
    const e = await refusal(await makeZip([{ name: 'README.md', content: '# nothing to run' }]));
    expect(e.code).toBe('NO_ENTRY_POINT');
    expect(e.message).toMatch(/run\.sh, run\.py, main\.py/);
  });
});
