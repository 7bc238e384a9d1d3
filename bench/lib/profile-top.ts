/**
 * Summarises a .cpuprofile (see cpu-profile.ts): self time by function and by package or
 * file, the largest first. `node dist/bench/lib/profile-top.js <file.cpuprofile> [rows]`
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return url;
  const d = /\/dist\/(.*)$/.exec(url);
  return d ? d[1] : url || '(native)';
}

function main(): void {
  const [file, rowsArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile-top <file.cpuprofile> [rows]');
  const rows = Number(rowsArg ?? 25);
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byWhere = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const fn = `${f.functionName || '(anonymous)'} ${where(f.url)}:${f.lineNumber + 1}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + us);
    byWhere.set(where(f.url), (byWhere.get(where(f.url)) ?? 0) + us);
  }
  const show = (title: string, m: Map<string, number>) => {
    console.log(`${title} (total ${(total / 1000).toFixed(0)} ms)`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`  ${(us / 1000).toFixed(1).padStart(8)} ms  ${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}`);
  };
  // Inclusive time of the project's own functions (a synchronous call and what it calls;
  // an awaited continuation counts where it resumes), each function counted once per sample.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      if (!/\/dist\/(apps|libs)\//.test(f.url)) continue;
      const fn = `${f.functionName || '(anonymous)'} ${where(f.url)}:${f.lineNumber + 1}`;
      if (seen.has(fn)) continue;
      seen.add(fn);
      inclusive.set(fn, (inclusive.get(fn) ?? 0) + us);
    }
  }
  show('self time by package or file', byWhere);
  show('self time by function', byFn);
  show("inclusive time of the project's functions", inclusive);
}

main();
