#!/usr/bin/env node
// Writes apps/cli/src/config-reference.ts from the README's "Worker (gateway, executor,
// monitor)" configuration table: the README is the one source of the variables'
// defaults and meanings, and `hivemind-worker init` writes its config file from them.
// Run after changing the table: node scripts/gen-config-reference.mjs
// With --check it writes nothing and exits 1 when the file is not what the table gives
// (apps/cli/src/config-template.spec.ts runs that).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const text = readFileSync(join(root, 'README.md'), 'utf8');
const start = text.indexOf('### Worker (gateway, executor, monitor)');
if (start < 0) throw new Error('README.md has no "### Worker (gateway, executor, monitor)" section');
const end = text.indexOf('\n### ', start + 1);

/** The cells of a table row; a `|` inside backticks is text. */
function cells(line) {
  const out = [];
  let cur = '';
  let code = false;
  for (const ch of line.trim().slice(1, -1)) {
    if (ch === '`') code = !code;
    if (ch === '|' && !code) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

const rows = text
  .slice(start, end)
  .split('\n')
  .filter((l) => l.startsWith('| `'))
  .map((l) => {
    const [v, dflt, meaning] = cells(l);
    return { names: v.split(',').map((n) => n.trim().replace(/`/g, '')), dflt, meaning };
  });

const header = `/**
 * The worker's configuration variables as the README's "Configuration: Worker" table
 * lists them (same order, same text), generated from it by scripts/gen-config-reference.mjs:
 * \`hivemind-worker init\` writes its config file from this list, and
 * config-template.spec.ts fails when this list, the README table and the config schema
 * (libs/shared/src/config/worker-config.ts) disagree.
 */
export interface WorkerVariableDoc {
  /** Variables of the row (a few rows name two). */
  names: readonly string[];
  /** The default, as the README writes it (Markdown). */
  dflt: string;
  /** What it means, as the README writes it (Markdown). */
  meaning: string;
}
`;
const body = rows.map((r) => `  { names: ${JSON.stringify(r.names).replace(/","/g, '", "')}, dflt: ${JSON.stringify(r.dflt)}, meaning: ${JSON.stringify(r.meaning)} },`).join('\n');
const target = join(root, 'apps/cli/src/config-reference.ts');
const generated = `${header}\nexport const WORKER_VARIABLES: readonly WorkerVariableDoc[] = [\n${body}\n];\n`;
if (process.argv.includes('--check')) {
  if (readFileSync(target, 'utf8') !== generated) {
    console.error('apps/cli/src/config-reference.ts differs from the README table: run node scripts/gen-config-reference.mjs');
    process.exit(1);
  }
  console.log(`apps/cli/src/config-reference.ts matches the README table (${rows.length} rows)`);
} else {
  writeFileSync(target, generated);
  console.log(`apps/cli/src/config-reference.ts: ${rows.length} rows from README.md`);
}
