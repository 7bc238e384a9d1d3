import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../support/stack';

interface NestProject {
  type: 'application' | 'library';
  root: string;
  sourceRoot: string;
  entryFile?: string;
}

/** nest-cli.json names every app and library there is, and only files that exist. */
describe('nest-cli.json', () => {
  const config = JSON.parse(readFileSync(path.join(ROOT, 'nest-cli.json'), 'utf8')) as { projects: Record<string, NestProject> };
  const projects = Object.entries(config.projects);

  it('lists every folder under apps/ and libs/', () => {
    const dirs = ['apps', 'libs'].flatMap((d) => readdirSync(path.join(ROOT, d)).map((n) => `${d}/${n}`));
    expect(projects.map(([, p]) => p.root).sort()).toEqual(dirs.sort());
  });

  it.each(projects)('%s: its source root and entry file exist', (_name, p) => {
    expect(existsSync(path.join(ROOT, p.sourceRoot))).toBe(true);
    if (p.type === 'application') expect(existsSync(path.join(ROOT, p.sourceRoot, `${p.entryFile}.ts`))).toBe(true);
    if (p.entryFile !== undefined) expect(existsSync(path.join(ROOT, p.sourceRoot, `${p.entryFile}.ts`))).toBe(true);
  });
});
