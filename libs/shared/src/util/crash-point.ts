/**
 * Fault injection for the fault tests: a service started with FAULT_CRASH_AT=<point>
 * kills itself with SIGKILL when it reaches that point, so a test can land a crash
 * exactly in a window (between the pool's acknowledgement of a result and its record,
 * say) instead of hoping a random kill lands there. Unset, as in every real deployment,
 * it does nothing.
 */
export type CrashPoint = 'result:before-upload' | 'result:after-ack' | 'result:after-record';

export function crashPoint(armed: string, point: CrashPoint): void {
  if (armed === point) process.kill(process.pid, 'SIGKILL');
}
