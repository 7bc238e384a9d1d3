import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { ContainerLimits } from '@hivemind/shared/queue/queues';
import { Outcome, outcomes } from '@hivemind/shared/task-format/outcome';
import { RunExit, TaskRuntime } from '../runtime/task-runtime.port';
import { onCancel } from './cancellation';
import { PACKAGES_DIR } from './task-context';

export interface InstallContext {
  taskId: string;
  workspace: string;
  runtime: TaskRuntime;
  limits: ContainerLimits;
  config: WorkerConfig;
  note(line: string): void;
  push(chunk: Buffer): void;
  signal: AbortSignal;
}

/** The requirements.txt step: null when there was nothing to do or it worked, else why the task cannot run. */
export async function installRequirements(ctx: InstallContext): Promise<Outcome | null> {
  const c = ctx.config;
  if (!c.REQUIREMENTS_INSTALL || !(await fs.stat(path.join(ctx.workspace, 'requirements.txt')).then(() => true, () => false))) return null;
  ctx.signal.throwIfAborted();
  const inside = ctx.runtime.workspacePath(ctx.workspace);
  const args = ['python3', '-m', 'pip', 'install', '--no-cache-dir', '--disable-pip-version-check', '--no-input', '--progress-bar', 'off'];
  args.push('--target', path.posix.join(inside, PACKAGES_DIR), '-r', 'requirements.txt');
  ctx.note('installing requirements.txt');
  let tail = '';
  const handle = await ctx.runtime.start(
    {
      taskId: ctx.taskId,
      workspace: ctx.workspace,
      command: args,
      env: { HOME: '/tmp', TMPDIR: '/tmp', LANG: 'C.UTF-8', PYTHONUNBUFFERED: '1', PIP_ROOT_USER_ACTION: 'ignore' },
      limits: ctx.limits,
      entryKind: 'python',
      phase: 'install',
      network: true,
    },
    (chunk) => {
      ctx.push(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-8192);
    },
  );
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void handle.stop(c.STOP_GRACE_PERIOD);
  }, c.INSTALL_TIMEOUT * 1000);
  const off = onCancel(ctx.signal, () => void handle.stop(c.STOP_GRACE_PERIOD));
  let exit: RunExit;
  try {
    exit = await handle.done;
  } finally {
    clearTimeout(timer);
    off();
    await ctx.runtime.remove(ctx.taskId, 'install');
  }
  ctx.signal.throwIfAborted();
  if (timedOut) return outcomes.timedOut(c.INSTALL_TIMEOUT, 'INSTALL_TIMEOUT');
  if (exit.exitCode === 0 && !exit.error) {
    ctx.note('requirements installed');
    return null;
  }
  const errors = tail.split('\n').filter((l) => /^ERROR:/.test(l.trim())).map((l) => l.trim());
  const detail = errors.length ? errors.join(' ') : tail.trim().split('\n').slice(-3).join(' ');
  const why = exit.error ?? (exit.oomKilled ? 'ran out of memory' : `pip exited with code ${exit.exitCode}`);
  return outcomes.installFailed(`(${why}): ${detail.slice(0, 2000) || 'no output'}`);
}
