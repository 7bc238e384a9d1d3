import { NodeSettingsStore, SettingsError } from '@hivemind/shared/settings/node-settings';
import { connectNodeState, NodeStateConnection } from '@hivemind/shared/state/node-state';
import { redisUrl, uniquePrefix } from '../support/stack';

const machine = { cpuCores: 4, cpuScore: 400, memoryGb: 8, gpuScore: 0, gpuMemoryGb: 0 };
const defaults = { maxConcurrentTasks: 2, ownerReservedCores: 1, ownerReservedMemoryGb: 0 };

describe('live node settings in Redis', () => {
  let state: NodeStateConnection;

  beforeEach(() => {
    state = connectNodeState(redisUrl(), uniquePrefix('settings'), 'test-settings');
  });
  afterEach(() => state.close());

  it('starts from the config defaults and applies a change every store sees', async () => {
    const a = new NodeSettingsStore(state.settings, machine, defaults);
    const b = new NodeSettingsStore(state.settings, machine, defaults);
    expect(await a.get()).toEqual(defaults);
    expect((await a.capacity()).cpuCores).toBe(3);
    await a.update({ maxConcurrentTasks: 5, ownerReservedCores: 2 });
    expect(await b.get()).toEqual({ maxConcurrentTasks: 5, ownerReservedCores: 2, ownerReservedMemoryGb: 0 });
    expect(await b.capacity()).toMatchObject({ cpuCores: 2, cpuScore: 200, maxTasks: 5 });
    expect(await b.reset()).toEqual(defaults);
  });

  it('refuses a bad change with the field named and keeps the settings as they were', async () => {
    const s = new NodeSettingsStore(state.settings, machine, defaults);
    await s.update({ maxConcurrentTasks: 3 });
    await expect(s.update({ maxConcurrentTasks: 3, ownerReservedMemoryGb: 9 })).rejects.toThrow(SettingsError);
    await expect(s.update({ ownerReservedMemoryGb: 9 })).rejects.toThrow(/^ownerReservedMemoryGb: /);
    await expect(s.update({ cores: 1 })).rejects.toThrow(/^cores: /);
    expect(await s.get()).toEqual({ ...defaults, maxConcurrentTasks: 3 });
  });

  it('ignores a stored value that no longer fits the machine', async () => {
    // Stored before the machine shrank (or by hand): the overrides hold it as written, unchecked.
    await state.settings.write({ ownerReservedCores: '6', maxConcurrentTasks: 'lots' });
    const s = new NodeSettingsStore(state.settings, machine, defaults);
    expect(await s.get()).toEqual(defaults);
  });
});
