import { ZipFile } from 'yazl';

export interface ZipItem {
  name: string;
  content?: string | Buffer;
  mode?: number;
  dir?: boolean;
}

/** Builds a zip in memory. */
export async function makeZip(items: ZipItem[], compress = true): Promise<Buffer> {
  const zip = new ZipFile();
  for (const it of items) {
    if (it.dir) zip.addEmptyDirectory(it.name);
    else zip.addBuffer(Buffer.from(it.content ?? ''), it.name, { compress, ...(it.mode ? { mode: it.mode } : {}) });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * yazl refuses unsafe names, as it should; to build a hostile zip, write a safe
 * name of the same length and patch it in the local header and central directory.
 */
export async function makeZipWithRawName(safeName: string, hostileName: string, content = 'x'): Promise<Buffer> {
  if (safeName.length !== hostileName.length) throw new Error('names must have the same length');
  const buf = await makeZip([{ name: 'run.py', content: 'print(1)' }, { name: safeName, content }]);
  const from = Buffer.from(safeName);
  const to = Buffer.from(hostileName);
  let i = buf.indexOf(from);
  while (i !== -1) {
    to.copy(buf, i);
    i = buf.indexOf(from, i + 1);
  }
  return buf;
}
