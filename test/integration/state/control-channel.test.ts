import { ControlMessage, ControlSubscription, STOP_FLAG_TTL_S } from '@hivemind/shared/state/control-channel';
import { openFixture, StateFixture, until } from './support';

describe('ControlChannel (stop flags, control channel, pause key) against real Redis', () => {
  let f: StateFixture;
  const subs: ControlSubscription[] = [];
  beforeEach(() => (f = openFixture('control')));
  afterEach(async () => {
    subs.splice(0).forEach((s) => s.close());
    await f.close();
  });

  it('requestStop sets the task\'s flag (expiring) and a subscriber gets the stop message', async () => {
    const { control } = f.state;
    const got: ControlMessage[] = [];
    const malformed: string[] = [];
    subs.push(await control.subscribe('test-sub', (m) => got.push(m), (raw) => malformed.push(raw)));
    expect(await control.stopRequested('t1')).toBe(false);
    await control.requestStop('t1', 4242);
    expect(await control.stopRequested('t1')).toBe(true);
    expect(await control.stopRequested('t2')).toBe(false);
    expect(await f.raw.get(f.keys.stop('t1'))).toBe('4242');
    const ttl = await f.raw.ttl(f.keys.stop('t1'));
    expect(ttl).toBeGreaterThan(STOP_FLAG_TTL_S - 60);
    expect(ttl).toBeLessThanOrEqual(STOP_FLAG_TTL_S);
    await until('the stop message', () => got.length > 0);
    expect(got).toEqual([{ type: 'stop', taskId: 't1' }]);
    expect(malformed).toEqual([]);
    await control.clearStop('t1');
    expect(await control.stopRequested('t1')).toBe(false);
  });

  it('a malformed or wrong-shaped message goes to onMalformed, not onMessage', async () => {
    const got: ControlMessage[] = [];
    const malformed: string[] = [];
    subs.push(await f.state.control.subscribe('test-sub', (m) => got.push(m), (raw) => malformed.push(raw)));
    await f.raw.publish(f.keys.control, 'not json');
    await f.raw.publish(f.keys.control, JSON.stringify({ type: 'kill', taskId: 't1' }));
    await f.raw.publish(f.keys.control, JSON.stringify({ type: 'stop', taskId: 't9' })); // a good one after them
    await until('every message', () => got.length + malformed.length >= 3);
    expect(malformed).toEqual(['not json', JSON.stringify({ type: 'kill', taskId: 't1' })]);
    expect(got).toEqual([{ type: 'stop', taskId: 't9' }]);
  });

  it('close() ends the subscription', async () => {
    const got: ControlMessage[] = [];
    const sub = await f.state.control.subscribe('test-sub', (m) => got.push(m));
    sub.close();
    const other: ControlMessage[] = [];
    subs.push(await f.state.control.subscribe('test-sub-2', (m) => other.push(m)));
    await f.state.control.requestStop('t1');
    await until('the open subscription to get it', () => other.length > 0);
    expect(got).toEqual([]);
  });

  it('pause / resume / isPaused / pauseState; an unreadable pause key still pauses', async () => {
    const { control } = f.state;
    expect(await control.isPaused()).toBe(false);
    expect(await control.pauseState()).toBeNull();
    await control.pause('dashboard', 5000);
    expect(await control.isPaused()).toBe(true);
    expect(await control.pauseState()).toEqual({ at: 5000, by: 'dashboard' });
    await control.resume();
    expect(await control.isPaused()).toBe(false);
    expect(await control.pauseState()).toBeNull();
    await f.raw.set(f.keys.paused, '1'); // e.g. set by hand
    expect(await control.isPaused()).toBe(true);
    expect(await control.pauseState()).toEqual({ at: 0, by: 'unknown' });
  });
});
