/**
 * Working hours: when the node takes work. Syntax (WORK_SCHEDULE), in the machine's
 * local time:
 *
 *   rule[; rule...]      rule = DAYS RANGE[,RANGE...]
 *   DAYS   Mon..Sun, ranges like Mon-Fri (Fri-Mon wraps), lists like Sat,Sun or
 *          Mon-Wed,Fri, or `*` / `daily` for every day; names are case-insensitive
 *          and may be written out (monday).
 *   RANGE  HH:MM-HH:MM; 24:00 is the end of the day. An end at or before the start
 *          runs past midnight into the next day: `Mon-Fri 18:00-08:00` is open from
 *          Monday 18:00 to Tuesday 08:00, ..., Friday 18:00 to Saturday 08:00.
 *
 * Example: `Mon-Fri 18:00-08:00; Sat,Sun 00:00-24:00`. Unset: always open.
 */
export interface WorkSchedule {
  text: string;
  /** [start, end) in minutes from Monday 00:00; end may pass the week's end (wraps). */
  intervals: [number, number][];
}

export interface ScheduleStatus {
  open: boolean;
  /** While closed: when it opens next. */
  opensAt: Date | null;
  /** While open: when it closes next (null when always open). */
  closesAt: Date | null;
}

export class ScheduleError extends Error {}

const WEEK = 7 * 1440;
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const FULL = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

function dayIndex(word: string, fail: (m: string) => never): number {
  const w = word.trim().toLowerCase();
  const i = DAYS.indexOf(w) >= 0 ? DAYS.indexOf(w) : FULL.indexOf(w);
  if (i < 0) fail(`unknown day "${word.trim()}" (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)`);
  return i;
}

function parseDays(spec: string, fail: (m: string) => never): number[] {
  const s = spec.trim().toLowerCase();
  if (s === '*' || s === 'daily') return [0, 1, 2, 3, 4, 5, 6];
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    if (!part.trim()) fail(`empty day in "${spec}"`);
    const [a, b, extra] = part.split('-');
    if (extra !== undefined) fail(`bad day range "${part.trim()}"`);
    const from = dayIndex(a, fail);
    if (b === undefined) {
      out.add(from);
      continue;
    }
    const to = dayIndex(b, fail);
    for (let d = from; ; d = (d + 1) % 7) {
      out.add(d);
      if (d === to) break;
    }
  }
  return [...out].sort();
}

function parseTime(t: string, fail: (m: string) => never): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(t.trim());
  if (!m) fail(`bad time "${t.trim()}" (expected HH:MM)`);
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59 || h > 24 || (h === 24 && min > 0)) fail(`bad time "${t.trim()}" (00:00 to 24:00)`);
  return h * 60 + min;
}

/** Parses a schedule; errors name `variable` and the rule at fault. */
export function parseWorkSchedule(text: string, variable = 'WORK_SCHEDULE'): WorkSchedule {
  const intervals: [number, number][] = [];
  const rules = text.split(';').map((r) => r.trim()).filter(Boolean);
  if (rules.length === 0) throw new ScheduleError(`${variable}: no rule in "${text}" (expected e.g. "Mon-Fri 18:00-08:00; Sat,Sun 00:00-24:00")`);
  for (const rule of rules) {
    const fail = (m: string): never => {
      throw new ScheduleError(`${variable}: ${m} in rule "${rule}" (expected e.g. "Mon-Fri 18:00-08:00; Sat,Sun 00:00-24:00")`);
    };
    const m = /^(\S+)\s+(.+)$/.exec(rule);
    if (!m) fail('expected days then hours');
    const days = parseDays(m![1], fail);
    for (const range of m![2].split(',')) {
      const parts = range.split('-');
      if (parts.length !== 2) fail(`bad hours "${range.trim()}" (expected HH:MM-HH:MM)`);
      const start = parseTime(parts[0], fail);
      let end = parseTime(parts[1], fail);
      if (start === 1440) fail(`hours "${range.trim()}" start at 24:00`);
      if (end <= start) end += 1440;
      for (const d of days) intervals.push([d * 1440 + start, d * 1440 + end]);
    }
  }
  return { text, intervals };
}

/** Minutes since Monday 00:00 local time (with seconds as a fraction). */
function minuteOfWeek(d: Date): number {
  const day = (d.getDay() + 6) % 7;
  return day * 1440 + d.getHours() * 60 + d.getMinutes() + d.getSeconds() / 60 + d.getMilliseconds() / 60000;
}

/** The end of the interval covering week-minute m, or null. */
function coverEnd(s: WorkSchedule, m: number): number | null {
  let best: number | null = null;
  for (const [a, b] of s.intervals) {
    for (const shift of [0, WEEK, -WEEK]) {
      if (m >= a + shift && m < b + shift) best = Math.max(best ?? -Infinity, b + shift);
    }
  }
  return best;
}

function addMinutes(now: Date, minutes: number): Date {
  // Local calendar arithmetic on the whole minute, so the times read as the schedule says.
  const d = new Date(now.getFullYear(), now.getMonth(), now.getDate(), now.getHours(), now.getMinutes());
  d.setMinutes(d.getMinutes() + Math.round(minutes));
  return d;
}

export function scheduleStatus(s: WorkSchedule | null, now: Date): ScheduleStatus {
  if (!s) return { open: true, opensAt: null, closesAt: null };
  const m = minuteOfWeek(now);
  const whole = Math.floor(m);
  let end = coverEnd(s, m);
  if (end !== null) {
    // Follow adjacent intervals (e.g. Mon 18:00-24:00 then Tue 00:00-08:00).
    for (let i = 0; i < 64; i++) {
      const next = coverEnd(s, end);
      if (next === null || next <= end) break;
      end = next;
      if (end - m >= WEEK) return { open: true, opensAt: null, closesAt: null };
    }
    return { open: true, opensAt: null, closesAt: addMinutes(now, end - whole) };
  }
  let wait = Infinity;
  for (const [a] of s.intervals) {
    const delta = (((a - whole) % WEEK) + WEEK) % WEEK || WEEK;
    wait = Math.min(wait, delta);
  }
  return { open: false, opensAt: addMinutes(now, wait), closesAt: null };
}

/** "Mon 18:00", for messages. */
export function describeWhen(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${DAY_NAMES[(d.getDay() + 6) % 7]} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
