import { openFixture, StateFixture } from './support';

// test/integration/node-settings.test.ts covers NodeSettingsStore (validation, capacity);
// this file covers the raw overrides it stores through SettingsOverrides.
describe('SettingsOverrides (hash settings) against real Redis', () => {
  let f: StateFixture;
  beforeEach(() => (f = openFixture('settings')));
  afterEach(() => f.close());

  it('write merges, read returns every override as text, clear deletes them', async () => {
    const { settings } = f.state;
    expect(await settings.read()).toEqual({});
    await settings.write({ maxConcurrentTasks: '3', ownerReservedCores: '1' });
    await settings.write({ ownerReservedCores: '2' });
    expect(await settings.read()).toEqual({ maxConcurrentTasks: '3', ownerReservedCores: '2' });
    expect(await f.raw.hgetall(f.keys.settings)).toEqual({ maxConcurrentTasks: '3', ownerReservedCores: '2' });
    await settings.clear();
    expect(await settings.read()).toEqual({});
    expect(await f.raw.exists(f.keys.settings)).toBe(0);
  });

  it('writing nothing is a no-op, not an error', async () => {
    await f.state.settings.write({ a: '1' });
    await f.state.settings.write({});
    expect(await f.state.settings.read()).toEqual({ a: '1' });
  });
});
