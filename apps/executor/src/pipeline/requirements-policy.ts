/**
 * What a task's requirements.txt may ask of the install step: PEP 508 requirements by
 * name only (`name[extras] specifiers ; marker`, with `--hash=` options), nothing that
 * points pip elsewhere (URLs, paths, editables) and no option lines (other files, other
 * indexes, find-links, trusted hosts...). Pure: no I/O. pip is handed only the
 * normalized text built here from the parsed parts, never the task's own file.
 */

export interface RequirementsLimits {
  /** Largest requirements.txt accepted, in bytes. */
  maxBytes: number;
  /** Most lines (physical, comments and blanks included). */
  maxLines: number;
}

export const DEFAULT_REQUIREMENTS_LIMITS: RequirementsLimits = { maxBytes: 64 * 1024, maxLines: 1000 };

export interface Requirement {
  /** 1-based line where it starts. */
  line: number;
  name: string;
  extras: string[];
  /** e.g. `>=1.0,<2` (empty: any version). */
  specifier: string;
  marker: string | null;
  hashes: string[];
}

export type RequirementsCheck =
  | { ok: true; requirements: Requirement[]; text: string }
  | { ok: false; reason: string };

/** Thrown inside the parser; turned into a refusal naming the line. */
class Refusal extends Error {}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?/;
const IDENT = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const VERSION_OP = /^(===|==|!=|<=|>=|~=|<|>)/;
const VERSION = /^[A-Za-z0-9_.*+!-]+/;
const ARCHIVE = /\.(whl|zip|tar|tgz|tbz|txz|tlz|tar\.(gz|bz2|xz|lz|lzma))$/i;
const HASH = /^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/i;
const MARKER_VARS = new Set([
  'python_version', 'python_full_version', 'os_name', 'sys_platform', 'platform_release', 'platform_system',
  'platform_version', 'platform_machine', 'platform_python_implementation', 'implementation_name', 'implementation_version', 'extra',
]);
/** Marker string values: no spaces, quotes, `$` (pip expands `${VAR}`) or `#` (a comment to pip). */
const MARKER_VALUE = /^[A-Za-z0-9._*+!~-]*$/;

function optionRefusal(opt: string): string {
  if (['-e', '--editable'].includes(opt)) return 'an editable (local or VCS) requirement is not allowed';
  if (['-r', '--requirement', '-c', '--constraint'].includes(opt)) return 'including another requirements or constraints file is not allowed';
  if (['-i', '--index-url', '--extra-index-url', '--no-index', '-f', '--find-links', '--trusted-host'].includes(opt)) {
    return `${opt} is not allowed: packages come from this node's package index only`;
  }
  return `the pip option ${opt} is not allowed: only requirement lines (name, extras, versions, marker, --hash) are`;
}

/** Parses a PEP 508 marker and returns it normalized (single spaces, double quotes). */
function parseMarker(src: string): string {
  const tokens: string[] = [];
  let s = src.trim();
  while (s) {
    const m =
      /^(\(|\)|===|==|!=|<=|>=|~=|<|>)/.exec(s) ??
      /^("[^"]*"|'[^']*')/.exec(s) ??
      /^not\s+in\b/.exec(s) ??
      /^[A-Za-z_][A-Za-z0-9_.]*/.exec(s);
    if (!m) throw new Refusal(`the environment marker cannot be read at ${JSON.stringify(s.slice(0, 20))}`);
    tokens.push(m[0].replace(/^not\s+in$/, 'not in'));
    s = s.slice(m[0].length).trimStart();
  }
  let i = 0;
  const peek = () => tokens[i];
  const value = (): string => {
    const t = tokens[i++];
    if (t === undefined) throw new Refusal('the environment marker ends too early');
    if (/^["']/.test(t)) {
      const v = t.slice(1, -1);
      if (!MARKER_VALUE.test(v)) throw new Refusal(`the marker value ${t} has characters this node does not accept`);
      return `"${v}"`;
    }
    if (!MARKER_VARS.has(t)) throw new Refusal(`${JSON.stringify(t)} is not a marker variable`);
    return t;
  };
  const expr = (): string => {
    if (peek() === '(') {
      i++;
      const inner = or();
      if (tokens[i++] !== ')') throw new Refusal('the environment marker has an unclosed "("');
      return `(${inner})`;
    }
    const left = value();
    const op = tokens[i++];
    if (!op || !/^(===|==|!=|<=|>=|~=|<|>|in|not in)$/.test(op)) throw new Refusal('the environment marker lacks a comparison');
    return `${left} ${op} ${value()}`;
  };
  const and = (): string => {
    let out = expr();
    while (peek() === 'and') {
      i++;
      out += ` and ${expr()}`;
    }
    return out;
  };
  const or = (): string => {
    let out = and();
    while (peek() === 'or') {
      i++;
      out += ` or ${and()}`;
    }
    return out;
  };
  const marker = or();
  if (i !== tokens.length) throw new Refusal(`the environment marker has more after ${JSON.stringify(marker)}`);
  return marker;
}

/** Parses one logical requirement line (comments removed, not empty). */
function parseLine(line: string, lineNo: number): Requirement {
  if (line.startsWith('-')) throw new Refusal(optionRefusal(/^-[^\s=]*/.exec(line)![0]));
  if (/\$/.test(line)) throw new Refusal('"$" is not allowed (pip would expand environment variables)');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(line)) throw new Refusal('a URL is not allowed: requirements are installed by name from this node\'s package index');
  // The options part starts at the first word that starts with "-" (as pip splits it).
  const opt = /(^|\s)-/.exec(line);
  const reqPart = opt ? line.slice(0, opt.index) : line;
  const hashes: string[] = [];
  const words = opt ? line.slice(opt.index).trim().split(/\s+/) : [];
  for (let w = 0; w < words.length; w++) {
    let h: string | undefined;
    if (words[w].startsWith('--hash=')) h = words[w].slice(7);
    else if (words[w] === '--hash') h = words[++w];
    else throw new Refusal(`the option ${words[w].split('=')[0]} is not allowed on a requirement line (only --hash is)`);
    if (!h || !HASH.test(h)) throw new Refusal(`${JSON.stringify(h ?? '')} is not a hash this node accepts (sha256, sha384 or sha512, in hex)`);
    hashes.push(h.toLowerCase());
  }
  let s = reqPart.trim();
  const name = NAME.exec(s)?.[0];
  if (!name || /^[./\\~]/.test(s)) throw new Refusal('a local path is not allowed: only requirements by name are');
  s = s.slice(name.length).trimStart();
  if (/^[/\\]/.test(s) || ARCHIVE.test(name)) throw new Refusal('a local path or archive is not allowed: only requirements by name are');
  let extras: string[] = [];
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) throw new Refusal('the extras have no closing "]"');
    extras = s.slice(1, end).split(',').map((e) => e.trim()).filter((e, k, all) => e || all.length > 1);
    if (extras.some((e) => !IDENT.test(e))) throw new Refusal(`the extras [${s.slice(1, end)}] are not valid names`);
    s = s.slice(end + 1).trimStart();
  }
  if (s.startsWith('@')) throw new Refusal('a direct reference ("name @ URL") is not allowed: requirements are installed from this node\'s package index');
  const paren = s.startsWith('(');
  if (paren) s = s.slice(1).trimStart();
  const specs: string[] = [];
  while (VERSION_OP.test(s)) {
    const op = VERSION_OP.exec(s)![0];
    s = s.slice(op.length).trimStart();
    const version = VERSION.exec(s)?.[0];
    if (!version) throw new Refusal(`a version is missing after "${op}"`);
    specs.push(`${op}${version}`);
    s = s.slice(version.length).trimStart();
    if (!s.startsWith(',')) break;
    s = s.slice(1).trimStart();
    if (!VERSION_OP.test(s)) throw new Refusal('a version specifier is missing after ","');
  }
  if (paren) {
    if (!s.startsWith(')')) throw new Refusal('the version specifiers have no closing ")"');
    s = s.slice(1).trimStart();
  }
  let marker: string | null = null;
  if (s.startsWith(';')) marker = parseMarker(s.slice(1));
  else if (s) throw new Refusal(`this is not a requirement (name[extras] versions ; marker): cannot read ${JSON.stringify(s.slice(0, 40))}`);
  return { line: lineNo, name, extras, specifier: specs.join(','), marker, hashes };
}

/** The line pip is handed for one requirement. */
export function requirementLine(r: Requirement): string {
  const extras = r.extras.length ? `[${r.extras.join(',')}]` : '';
  return `${r.name}${extras}${r.specifier}${r.marker ? ` ; ${r.marker}` : ''}${r.hashes.map((h) => ` --hash=${h}`).join('')}`;
}

/** Control characters other than tab (and the Unicode line separators pip would split on). */
const isControl = (ch: string, c = ch.codePointAt(0) ?? 0) => (c < 0x20 && c !== 0x09) || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029;

const quote = (text: string) => JSON.stringify(text.length > 120 ? `${text.slice(0, 117)}...` : text);

/**
 * Checks a task's requirements.txt. Refusals name every offending line (its number and
 * text, up to ten of them); an accepted file comes back as the normalized text to hand
 * to pip.
 */
export function checkRequirements(content: Buffer | string, limits: RequirementsLimits = DEFAULT_REQUIREMENTS_LIMITS): RequirementsCheck {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (bytes.length > limits.maxBytes) return { ok: false, reason: `it is ${bytes.length} bytes; at most ${limits.maxBytes} are allowed` };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    return { ok: false, reason: 'it is not UTF-8 text' };
  }
  const physical = text.split(/\r\n|\n|\r/);
  if (physical.length > limits.maxLines) return { ok: false, reason: `it has ${physical.length} lines; at most ${limits.maxLines} are allowed` };
  // Logical lines, as pip joins them: a line ending in "\" goes on with the next, unless it is a comment.
  const logical: { no: number; text: string }[] = [];
  let start = 0;
  let parts: string[] = [];
  for (let k = 0; k < physical.length; k++) {
    const raw = physical[k];
    const isComment = /^\s*#/.test(raw);
    if (!parts.length) start = k + 1;
    if (raw.endsWith('\\') && !isComment && k < physical.length - 1) {
      parts.push(raw.slice(0, -1));
      continue;
    }
    logical.push({ no: start, text: [...parts, isComment && parts.length ? '' : raw].join('') });
    parts = [];
  }

  const requirements: Requirement[] = [];
  const refusals: string[] = [];
  for (const { no, text: raw } of logical) {
    const line = raw.replace(/(^|\s+)#.*$/, '').trim();
    if (!line) continue;
    try {
      if ([...line].some((ch) => isControl(ch))) throw new Refusal('it contains control characters');
      requirements.push(parseLine(line, no));
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      refusals.push(`line ${no} ${quote(raw.trim())}: ${err.message}`);
    }
  }
  if (refusals.length) {
    const more = refusals.length > 10 ? `; and ${refusals.length - 10} more` : '';
    return { ok: false, reason: refusals.slice(0, 10).join('; ') + more };
  }
  return { ok: true, requirements, text: requirements.map((r) => `${requirementLine(r)}\n`).join('') };
}

/**
 * An index or proxy URL as logs and notes show it: the host (and port) only, without
 * user, password, path or query. pip's proxy form `[user:passwd@]host:port` is read too.
 */
export function redactIndex(url: string | undefined): string {
  if (!url) return 'pypi.org (pip\'s default)';
  try {
    return new URL(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url) ? url : `http://${url}`).host || '(no host)';
  } catch {
    return '(an index URL that cannot be read)';
  }
}
