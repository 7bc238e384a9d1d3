import { promises as fs } from 'node:fs';

/** Pids of this machine's processes whose command line holds `marker`. */
export async function processesWithMarker(marker: string): Promise<number[]> {
  const pids: number[] = [];
  for (const n of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const cmd = await fs.readFile(`/proc/${n}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(marker)) pids.push(Number(n));
  }
  return pids;
}

/**
 * A Python task whose child leaves the session (setsid), ignores SIGTERM and sleeps
 * holding the task's stdout open, its command line carrying `marker`; the top process
 * then runs `top` (e.g. `time.sleep(1)`).
 */
export function escapingTask(marker: string, top: string): string {
  return [
    'import os, sys, time',
    'if os.fork() == 0:',
    '    os.setsid()',
    `    os.execvp("python3", ["python3", "-c", "import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\nwhile True: time.sleep(1)", "${marker}"])`,
    'print("escaped", flush=True)',
    top,
  ].join('\n');
}
