import type { Logger } from 'pino';
import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { OwnerState } from '@hivemind/shared/owner/owner-state';
import { OwnerStateRepository } from '@hivemind/shared/state/owner-state';
import { OwnerFreezeService } from './owner-freeze.service';
import { TaskRuntime } from './runtime/task-runtime.port';

/** A pausable runtime, one that cannot pause, and an owner state that keep just what the freeze logic touches. */
function setup(pauseTasks = true, pausedAtStart = false) {
  let state: OwnerState | null = null;
  const frozen = new Map<string, string>();
  const calls: string[] = [];
  let paused = pausedAtStart;
  const owner = {
    read: async () => state,
    frozen: async (taskId: string, since: number) => void frozen.set(taskId, String(since)),
    thawed: async (taskId: string) => void frozen.delete(taskId),
  } as unknown as OwnerStateRepository;
  const docker = {
    supportsPause: true,
    isPaused: async () => paused,
    setPaused: async (taskId: string, pause: boolean) => {
      calls.push(`${pause ? 'pause' : 'unpause'} ${taskId}`);
      paused = pause;
      return true;
    },
  } as unknown as TaskRuntime;
  const processes = {
    supportsPause: false,
    isPaused: async () => false,
    setPaused: async (taskId: string) => {
      calls.push(`process ${taskId}`);
      return false;
    },
  } as unknown as TaskRuntime;
  const logger = { info: () => undefined, warn: () => undefined } as unknown as Logger;
  const svc = new OwnerFreezeService({ OWNER_BUSY_PAUSE_TASKS: pauseTasks } as WorkerConfig, logger, owner);
  const setBusy = (busy: boolean) => (state = { busy, ownerCpuPercent: 0, since: null, reason: '', frozenTasks: [], scheduleOpen: true });
  return { svc, calls, frozen, setBusy, docker, processes };
}

describe('OwnerFreezeService', () => {
  afterEach(() => jest.useRealTimers());

  it('pauses tracked Docker tasks while the owner is busy, resumes them after, and adds up the paused time', async () => {
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['nextTick', 'setImmediate'] });
    const { svc, calls, frozen, setBusy, docker, processes } = setup();
    await svc.track('a', docker);
    await svc.track('p', processes);
    setBusy(true);
    await svc.tick();
    expect(calls).toEqual(['pause a']);
    expect(svc.isFrozen('a')).toBe(true);
    expect([...frozen.keys()]).toEqual(['a']);
    jest.setSystemTime(1_004_000);
    expect(svc.frozenMs('a')).toBe(4000);
    await svc.tick(); // still busy: nothing more
    expect(calls).toHaveLength(1);
    setBusy(false);
    jest.setSystemTime(1_005_000);
    await svc.tick();
    expect(calls).toEqual(['pause a', 'unpause a']);
    expect(frozen.size).toBe(0);
    jest.setSystemTime(1_009_000);
    expect(svc.frozenMs('a')).toBe(5000);
    setBusy(true);
    await svc.tick();
    jest.setSystemTime(1_010_000);
    expect(await svc.untrack('a')).toBe(6000);
    expect(svc.frozenMs('p')).toBe(0);
  });

  it('thaws a task that is being stopped and never pauses it again', async () => {
    const { svc, calls, setBusy, docker } = setup();
    await svc.track('a', docker);
    setBusy(true);
    await svc.tick();
    await svc.thaw('a');
    await svc.tick();
    expect(calls).toEqual(['pause a', 'unpause a']);
    expect(svc.isFrozen('a')).toBe(false);
  });

  it('resumes an adopted container left paused when this executor does not pause tasks', async () => {
    const { svc, calls, frozen, docker } = setup(false, true);
    await svc.track('a', docker);
    expect(calls).toEqual(['unpause a']);
    expect(svc.isFrozen('a')).toBe(false);
    expect(frozen.size).toBe(0);
  });
});
