import { roundForPeople, summarizeStatus } from './node-summary';

describe('summarizeStatus', () => {
  it('says how many tasks run of how many, whatever the pool is told', () => {
    expect(summarizeStatus('Idle', 1, 2)).toEqual({ text: 'Running 1 of 2 tasks, room for more', tone: 'ok' });
    expect(summarizeStatus('Idle', 0, 2)).toEqual({ text: 'Waiting for tasks', tone: 'ok' });
    expect(summarizeStatus('Running 2 tasks', 2, 2)).toEqual({ text: 'Running 2 of 2 tasks: full', tone: 'ok' });
    expect(summarizeStatus('Running 1 tasks', 1, 1).text).toBe('Running 1 of 1 task: full');
  });

  it('says why the node takes no work, and what it still runs', () => {
    expect(summarizeStatus('Paused', 0, 2)).toEqual({ text: 'Paused: takes no new tasks', tone: 'warn' });
    expect(summarizeStatus('Paused', 1, 2).text).toBe('Paused: takes no new tasks; running 1 of 2 tasks');
    expect(summarizeStatus('Draining', 0, 2).text).toBe('Shutting down: takes no new tasks');
    expect(summarizeStatus('Busy (owner)', 0, 2).text).toBe('You are using the machine: takes no new tasks');
    expect(summarizeStatus('Closed (working hours)', 0, 2).text).toBe('Outside its working hours: takes no new tasks');
    expect(summarizeStatus('Low disk', 0, 2)).toEqual({ text: 'Low on disk: takes no new tasks', tone: 'bad' });
    expect(summarizeStatus('Unavailable', 0, 2)).toEqual({ text: 'Cannot run tasks: no executor is ready', tone: 'bad' });
  });

  it('passes an unknown status through as it is', () => {
    expect(summarizeStatus('Something new', 0, 2)).toEqual({ text: 'Something new', tone: 'warn' });
  });
});

describe('roundForPeople', () => {
  it('keeps one decimal below 10 and none from 10 up', () => {
    expect(roundForPeople(50.377141767068274)).toBe(50);
    expect(roundForPeople(3.14159)).toBe(3.1);
    expect(roundForPeople(9.96)).toBe(10);
    expect(roundForPeople(0)).toBe(0);
    expect(roundForPeople(NaN)).toBe(0);
  });
});
