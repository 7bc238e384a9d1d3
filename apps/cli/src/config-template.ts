import { WORKER_VARIABLES } from './config-reference';
import { SETTINGS, SettingName } from './settings';

/**
 * The commented config file `hivemind-worker init` writes: every setting of the
 * command and every worker variable of the README's configuration table, each with its
 * default and meaning. A setting given to init is written as a value; every other one is
 * a commented line holding its default, so removing the "# " sets it.
 */

const WIDTH = 100;

/** Markdown of the README table, as a plain-text comment. */
function plain(markdown: string): string {
  return markdown.replace(/\*\*/g, '').replace(/`/g, '');
}

/** A comment, wrapped at WIDTH columns. */
function comment(text: string, indent: string): string[] {
  const prefix = `${indent}# `;
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && prefix.length + line.length + 1 + word.length > WIDTH) {
      out.push(prefix + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) out.push(prefix + line);
  return out;
}

/** A YAML scalar: numbers and booleans bare, strings double-quoted (JSON strings are YAML). */
export function yamlScalar(v: string | number | boolean): string {
  if (typeof v !== 'string') return String(v);
  if (/^-?\d+(\.\d+)?$/.test(v) || v === 'true' || v === 'false') return v;
  return JSON.stringify(v);
}

/**
 * The README's default as a value to write, when it is one (`3600`, `redis://…`); null
 * when it is a description ("all cores", "(unset)") or names another variable (`GRPC_PORT`).
 */
export function literalDefault(dflt: string): string | null {
  const m = /^`([^`]+)`$/.exec(dflt.trim());
  if (!m || /^[A-Z][A-Z0-9_]*$/.test(m[1])) return null;
  return m[1];
}

export function renderConfigTemplate(values: Partial<Record<SettingName, string | number | boolean>> = {}): string {
  const covered = new Set(SETTINGS.map((s) => s.env));
  const lines: string[] = [
    '# hivemind-worker configuration (YAML), written by `hivemind-worker init`.',
    '# Use it with:  hivemind-worker --config <this file>   (or HIVEMIND_CONFIG=<this file>)',
    '#',
    '# Where a setting comes from, highest first: command-line flag > environment variable >',
    '# this file > default. A line "# key: value" shows a setting at its default: remove the',
    '# "# " to set it. A key left without a value stays unset. This file may hold passwords and',
    '# secrets: keep it readable by the worker only (init writes it with mode 0600).',
    '',
  ];
  for (const s of SETTINGS) {
    const dflt = s.dflt === undefined ? (s.name === 'nodeId' ? 'required' : 'unset') : String(s.dflt);
    const flagged = s.kind === 'bool' ? `--${s.flag}` : `--${s.flag} <value>`;
    lines.push(...comment(`${s.describe[0].toUpperCase()}${s.describe.slice(1)}. Flag ${flagged}, environment ${s.env}. Default: ${dflt}.`, ''));
    const v = values[s.name];
    lines.push(v !== undefined ? `${s.name}: ${yamlScalar(v)}` : `# ${s.name}:${s.dflt === undefined ? '' : ` ${yamlScalar(s.dflt)}`}`, '');
  }
  lines.push(
    ...comment('Every other worker variable (README, "Configuration: Worker"). An environment variable of the same name wins over the value here.', ''),
    ...comment(`Set above by their own keys: ${[...covered].filter((e) => WORKER_VARIABLES.some((w) => w.names.includes(e))).join(', ')}.`, ''),
    'env:',
  );
  for (const row of WORKER_VARIABLES) {
    const names = row.names.filter((n) => !covered.has(n));
    if (!names.length) continue;
    const literal = literalDefault(row.dflt);
    lines.push(...comment(`${plain(row.meaning)} Default: ${plain(row.dflt)}.`, '  '));
    for (const n of names) lines.push(`  # ${n}:${literal === null ? '' : ` ${yamlScalar(literal)}`}`);
    lines.push('');
  }
  return lines.join('\n');
}
