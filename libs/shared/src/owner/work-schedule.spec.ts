import { describeWhen, parseWorkSchedule, scheduleStatus } from './work-schedule';

// 2026-11-23 is a Monday. Local time, as the schedule is.
const at = (day: number, h: number, m = 0, s = 0) => new Date(2026, 10, 23 + day, h, m, s);
const MON = 0, TUE = 1, FRI = 4, SAT = 5, SUN = 6;

describe('work schedule', () => {
  const evenings = parseWorkSchedule('Mon-Fri 18:00-08:00; Sat,Sun 00:00-24:00');

  it('is open on weekday evenings, through the night, and all weekend', () => {
    for (const [d, h] of [[MON, 18], [MON, 23], [TUE, 3], [TUE, 7], [FRI, 20], [SAT, 12], [SUN, 23], [SAT, 7]] as const) {
      expect([d, h, scheduleStatus(evenings, at(d, h, 30)).open]).toEqual([d, h, true]);
    }
    for (const [d, h] of [[MON, 8], [MON, 12], [TUE, 17], [FRI, 9], [MON, 7]] as const) {
      expect([d, h, scheduleStatus(evenings, at(d, h, 30)).open]).toEqual([d, h, false]);
    }
  });

  it('says when a closed schedule opens, and when an open one closes', () => {
    const closed = scheduleStatus(evenings, at(TUE, 9, 15, 20));
    expect(closed.open).toBe(false);
    expect(closed.opensAt).toEqual(at(TUE, 18));
    expect(describeWhen(closed.opensAt!)).toBe('Tue 18:00');
    // Friday evening runs into the weekend, which ends at Monday 00:00 (Monday's night
    // starts on Monday evening: a range belongs to the day it starts on).
    expect(scheduleStatus(evenings, at(FRI, 19)).closesAt).toEqual(at(MON + 7, 0));
    expect(scheduleStatus(evenings, at(MON, 20)).closesAt).toEqual(at(TUE, 8));
  });

  it('boundaries: open at the start minute, closed at the end minute', () => {
    expect(scheduleStatus(evenings, at(MON, 18, 0, 0)).open).toBe(true);
    expect(scheduleStatus(evenings, at(MON, 17, 59, 59)).open).toBe(false);
    expect(scheduleStatus(evenings, at(TUE, 8, 0, 0)).open).toBe(false);
    expect(scheduleStatus(evenings, at(TUE, 7, 59, 59)).open).toBe(true);
  });

  it('wraps around the week, and reads several ranges, full names and `daily`', () => {
    const s = parseWorkSchedule('sunday 22:00-02:00');
    expect(scheduleStatus(s, at(MON, 1)).open).toBe(true);
    expect(scheduleStatus(s, at(MON, 3)).opensAt).toEqual(at(SUN, 22));
    const lunch = parseWorkSchedule('Fri-Mon 09:00-12:00,13:00-17:00');
    expect(scheduleStatus(lunch, at(SAT, 12, 30)).opensAt).toEqual(at(SAT, 13));
    expect(scheduleStatus(lunch, at(MON, 10)).open).toBe(true);
    expect(scheduleStatus(lunch, at(TUE, 10)).open).toBe(false);
    const always = parseWorkSchedule('daily 00:00-24:00');
    expect(scheduleStatus(always, at(TUE, 10))).toEqual({ open: true, opensAt: null, closesAt: null });
    expect(scheduleStatus(null, at(TUE, 10)).open).toBe(true);
  });

  it.each([
    ['', /WORK_SCHEDULE: no rule/],
    ['Mon-Fri', /WORK_SCHEDULE: expected days then hours in rule "Mon-Fri"/],
    ['Mon-Fry 09:00-17:00', /WORK_SCHEDULE: unknown day "Fry"/],
    ['Mon 9-17', /bad hours "9-17"|bad time "9"/],
    ['Mon 09:00-25:00', /bad time "25:00" \(00:00 to 24:00\)/],
    ['Mon 09:60-10:00', /bad time "09:60"/],
    ['Mon 24:00-10:00', /start at 24:00/],
    ['Mon,,Tue 09:00-10:00', /empty day/],
    ['Mon-Tue-Wed 09:00-10:00', /bad day range "Mon-Tue-Wed"/],
  ])('refuses %j, naming the variable', (text, msg) => {
    expect(() => parseWorkSchedule(text)).toThrow(msg);
  });
});
