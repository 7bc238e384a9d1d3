import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}`;
}

/** Replaces the section between <!-- name:start --> and <!-- name:end --> in bench/README.md. */
export async function writeSection(root: string, name: string, body: string): Promise<void> {
  const file = path.join(root, 'bench', 'README.md');
  let text = await fs.readFile(file, 'utf8').catch(() => '# Benchmarks\n');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i !== -1 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  await fs.writeFile(file, text);
}
