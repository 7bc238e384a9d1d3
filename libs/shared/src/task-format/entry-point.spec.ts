import { entryCommand, findEntryPoint, resolveLayout } from './entry-point';

describe('entry point discovery', () => {
  it('follows the deployed order: run.sh, run.py, main.py, app.py, index.py, start.py', () => {
    const all = ['start.py', 'index.py', 'app.py', 'main.py', 'run.py', 'run.sh'];
    const order: string[] = [];
    const left = [...all];
    while (left.length) {
      const e = findEntryPoint(left);
      order.push(e!.file);
      left.splice(left.indexOf(e!.file), 1);
    }
    expect(order).toEqual(['run.sh', 'run.py', 'main.py', 'app.py', 'index.py', 'start.py']);
  });

  it('then any .py, preferring names that start with main, app, run, start', () => {
    expect(findEntryPoint(['zeta.py', 'start_job.py', 'apply.py'])?.file).toBe('apply.py');
    expect(findEntryPoint(['zeta.py', 'start_job.py'])?.file).toBe('start_job.py');
    expect(findEntryPoint(['zeta.py', 'alpha.py'])?.file).toBe('alpha.py');
    expect(findEntryPoint(['mainframe.py', 'runner.py'])?.file).toBe('mainframe.py');
  });

  it('finds nothing without a script', () => {
    expect(findEntryPoint(['data.csv', 'README.md'])).toBeNull();
  });

  it('looks only at the top level, or inside a single top folder', () => {
    expect(resolveLayout(['sub/run.py', 'README.md'])).toBeNull();
    expect(resolveLayout(['proj/run.py', 'proj/x/y.py'])?.root).toBe('proj/');
    expect(resolveLayout(['a/run.py', 'b/run.py'])).toBeNull();
  });

  it('runs shell entries with bash and Python unbuffered', () => {
    expect(entryCommand({ file: 'run.sh', kind: 'shell' })).toEqual(['bash', 'run.sh']);
    expect(entryCommand({ file: 'main.py', kind: 'python' })).toEqual(['python3', '-u', 'main.py']);
  });
});
