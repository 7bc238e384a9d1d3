import * as path from 'node:path';

/** Entry points in the order deployed workers look for them. */
export const ENTRY_POINTS = ['run.sh', 'run.py', 'main.py', 'app.py', 'index.py', 'start.py'] as const;
const PREFERRED_PREFIXES = ['main', 'app', 'run', 'start'];

export interface EntryPoint {
  /** Path of the entry file relative to the task root. */
  file: string;
  kind: 'shell' | 'python';
}

export interface TaskLayout {
  /** Folder inside the zip that is the task's root ('' or 'name/'). */
  root: string;
  entry: EntryPoint;
  hasRequirements: boolean;
}

function pythonRank(name: string): number {
  const lower = name.toLowerCase();
  const i = PREFERRED_PREFIXES.findIndex((p) => lower.startsWith(p));
  return i === -1 ? PREFERRED_PREFIXES.length : i;
}

/** Picks the entry point among the files directly in one folder. */
export function findEntryPoint(filesInRoot: readonly string[]): EntryPoint | null {
  const names = new Set(filesInRoot);
  for (const candidate of ENTRY_POINTS) {
    if (names.has(candidate)) return { file: candidate, kind: candidate.endsWith('.sh') ? 'shell' : 'python' };
  }
  const others = filesInRoot
    .filter((n) => n.endsWith('.py'))
    .sort((a, b) => pythonRank(a) - pythonRank(b) || a.localeCompare(b));
  return others.length ? { file: others[0], kind: 'python' } : null;
}

/**
 * Works out where the task lives in the zip: at the top, or, when the zip holds a
 * single folder and nothing runnable at the top, inside that folder.
 */
export function resolveLayout(filePaths: readonly string[]): TaskLayout | null {
  const direct = (prefix: string) =>
    filePaths
      .filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
      .map((p) => p.slice(prefix.length));
  const attempt = (root: string): TaskLayout | null => {
    const files = direct(root);
    const entry = findEntryPoint(files);
    return entry ? { root, entry, hasRequirements: files.includes('requirements.txt') } : null;
  };
  const top = attempt('');
  if (top) return top;
  const tops = new Set(filePaths.map((p) => p.split('/')[0]));
  if (tops.size === 1 && filePaths.every((p) => p.includes('/'))) {
    return attempt(`${[...tops][0]}/`);
  }
  return null;
}

/** The command that runs an entry point, relative to the task root as working directory. */
export function entryCommand(entry: EntryPoint): string[] {
  const file = path.posix.normalize(entry.file);
  return entry.kind === 'shell' ? ['bash', file] : ['python3', '-u', file];
}
