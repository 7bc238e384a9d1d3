import { ZipFile } from 'yazl';
import { zipEntryTail } from './zip-entry-tail';

async function zipOf(files: Record<string, string>): Promise<Buffer> {
  const z = new ZipFile();
  for (const [name, text] of Object.entries(files)) z.addBuffer(Buffer.from(text), name);
  z.end();
  const chunks: Buffer[] = [];
  for await (const c of z.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('zipEntryTail', () => {
  it('returns the last bytes of the named entry only', async () => {
    const long = Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n');
    const zip = await zipOf({ 'a.txt': 'other', 'task_logs.txt': long });
    const tail = await zipEntryTail(zip, 'task_logs.txt', 100);
    expect(tail).toHaveLength(100);
    expect(long.endsWith(tail!)).toBe(true);
    expect(await zipEntryTail(zip, 'a.txt', 100)).toBe('other');
  });

  it('says null when the entry is missing and rejects a broken zip', async () => {
    expect(await zipEntryTail(await zipOf({ 'x.txt': 'x' }), 'task_logs.txt', 10)).toBeNull();
    await expect(zipEntryTail(Buffer.from('not a zip'), 'task_logs.txt', 10)).rejects.toThrow();
  });
});
