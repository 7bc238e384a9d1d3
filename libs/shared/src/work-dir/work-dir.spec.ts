import { InvalidTaskIdError, WorkDir } from './work-dir';

describe('WorkDir', () => {
  const w = new WorkDir('/var/lib/hm/work');

  it('derives every file of a task from its id', () => {
    expect(w.taskFiles('task-1')).toEqual({
      workspace: '/var/lib/hm/work/workspaces/task-1',
      log: '/var/lib/hm/work/logs/task-1.log',
      result: '/var/lib/hm/work/results/task-1.zip',
      taskZip: '/var/lib/hm/work/incoming/task-1.zip',
    });
    expect(w.kept('task-1')).toBe('/var/lib/hm/work/kept/task-1');
    expect(w.kept('task-1', true)).toBe('/var/lib/hm/work/kept/task-1.img');
  });

  it.each(['../etc/passwd', '/etc/passwd', 'a/b', '', 'x'.repeat(65), 'dots..', 'new\nline'])('refuses %j as a task id', (id) => {
    expect(() => w.workspace(id)).toThrow(InvalidTaskIdError);
    expect(() => w.result(id)).toThrow(/refusing task id/);
  });
});

describe('WorkDir.ownerOf', () => {
  it('names the task a leftover belongs to, or none', () => {
    expect(WorkDir.ownerOf('workspaces', 't1')).toBe('t1');
    expect(WorkDir.ownerOf('incoming', 't1.zip')).toBe('t1');
    expect(WorkDir.ownerOf('incoming', 't1.zip.partial')).toBe('t1');
    expect(WorkDir.ownerOf('results', 't1.zip.4242.abc123.partial')).toBe('t1');
    expect(WorkDir.ownerOf('logs', 't1.log')).toBe('t1');
    expect(WorkDir.ownerOf('volumes', 't1.img')).toBe('t1');
    expect(WorkDir.ownerOf('logs', 'notes.txt')).toBeNull();
    expect(new WorkDir('/w').taskZipPartial('t1')).toBe('/w/incoming/t1.zip.partial');
  });
});
