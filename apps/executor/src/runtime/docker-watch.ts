import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { errorMessage } from '@hivemind/shared/util/errors';
import { OutputListener, RunExit } from './task-runtime.port';

/** Errors that mean the daemon went away, not that the container failed. */
export function isDaemonGone(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return ['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE'].includes(e?.code ?? '') || /socket hang up|connect E|closed/i.test(e?.message ?? '');
}

/** How a task that outlived a daemon restart ended: a clean exit stands; anything else says why. */
function afterRestart(exit: RunExit): RunExit {
  if (exit.exitCode === 0 || exit.oomKilled) return exit;
  return { ...exit, error: `the Docker daemon restarted while the task ran; its container ended with exit code ${exit.exitCode}` };
}

/** A container's attached output stream and when it ends. */
export interface Attached {
  stream: NodeJS.ReadWriteStream;
  ended: Promise<void>;
}

/** Demultiplexes a container's attach stream into the listener. */
export function follow(container: Docker.Container, stream: NodeJS.ReadWriteStream, onOutput: OutputListener): Attached {
  const out = new PassThrough();
  out.on('data', (c: Buffer) => onOutput(c));
  container.modem.demuxStream(stream, out, out);
  const ended = new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  return { stream, ended };
}

/**
 * Follows a container to its end through restarts of the Docker daemon (see waitForEnd).
 * One per runtime: it watches the daemon's event stream once for every container.
 */
export class DaemonWatch {
  /** Moves on each time the daemon's event stream breaks (see watchDaemon). */
  private epoch = 0;
  private watchingDaemon = false;
  private readonly epochWaiters = new Set<() => void>();

  constructor(
    private readonly docker: Docker,
    private readonly waitMs: number,
  ) {}

  /**
   * Waits for a container's end, riding out a restart of the Docker daemon: when the
   * daemon goes away (a broken wait, or an inspect that finds no daemon after the
   * wait), it waits up to `daemonWaitMs` for the daemon to answer again, then looks
   * at the container. Still running (live-restore): reattach and wait again. Ended:
   * its exit status, with a reason that says the daemon restarted unless it exited 0.
   * Gone, or no daemon in time: a failure that says so. Never waits forever.
   */
  async waitForEnd(container: Docker.Container, attached: Attached, onOutput: OutputListener, stopRequested: () => boolean): Promise<RunExit> {
    let restarted = false;
    this.watchDaemon();
    for (;;) {
      let status: number | null = null;
      const epoch = this.epoch;
      try {
        // A wait cut off by a stopping daemon can hang without an error (live-restore):
        // the daemon's event stream breaking ends it instead.
        status = ((await this.unlessDaemonGoes(container.wait(), epoch)) as { StatusCode: number }).StatusCode;
        // Give the attach stream a moment to deliver the last bytes.
        await Promise.race([attached.ended, new Promise((r) => setTimeout(r, 2000))]);
        // Inspected even after a clean exit: a child of the task killed for memory shows only here.
        const info = await container.inspect();
        const exit = { exitCode: info.State?.ExitCode ?? status, oomKilled: Boolean(info.State?.OOMKilled) };
        // Killed by a signal nobody here sent: a daemon shutting down kills its containers
        // and still answers for a moment. If it is gone shortly after, say so.
        const killed = exit.exitCode === 137 || exit.exitCode === 143;
        if (!killed || exit.oomKilled || stopRequested() || !(await this.goingAway(epoch))) return restarted ? afterRestart(exit) : exit;
      } catch (err) {
        if (!isDaemonGone(err)) {
          // The wait answered but the container is no longer there to inspect: its status stands.
          if (status !== null) return restarted ? afterRestart({ exitCode: status, oomKilled: false }) : { exitCode: status, oomKilled: false };
          return { exitCode: null, oomKilled: false, error: `the container failed: ${errorMessage(err)}` };
        }
      }
      // The daemon went away mid-task (a daemon shutdown also ends the wait, with the
      // exit status of its own kill, and the inspect after it then finds no daemon).
      restarted = true;
      if (!(await this.daemonBack())) {
        return { exitCode: null, oomKilled: false, error: `the Docker daemon stopped answering while the task ran and was not back within ${Math.round(this.daemonWaitMs / 1000)} s` };
      }
      const info = await container.inspect().catch(() => null);
      if (!info) return { exitCode: null, oomKilled: false, error: 'the Docker daemon restarted while the task ran, and the task\'s container was gone' };
      if (!info.State.Running) return afterRestart({ exitCode: info.State.ExitCode, oomKilled: Boolean(info.State.OOMKilled) });
      // It survived (live-restore): follow its output again and keep waiting.
      const stream = (await container.attach({ stream: true, stdout: true, stderr: true }).catch(() => null)) as NodeJS.ReadWriteStream | null;
      if (stream) {
        // The old stream may still be open if only the event stream broke: one reader at a time.
        (attached.stream as NodeJS.ReadWriteStream & { destroy?: () => void }).destroy?.();
        Object.assign(attached, follow(container, stream, onOutput));
      }
    }
  }

  private get daemonWaitMs(): number {
    return this.waitMs;
  }

  /**
   * Whether the daemon went away around now: its event stream broke since `epoch`, or
   * it stops answering within a moment. (A restart can be over before anyone pings.)
   */
  private async goingAway(epoch: number): Promise<boolean> {
    for (let i = 0; i < 15; i++) {
      if (this.epoch !== epoch) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.epoch !== epoch || !(await this.docker.ping().then(() => true, () => false));
  }

  /** Runs `p`, but rejects (as a daemon-gone error) if the epoch moves past `epoch` first. */
  private async unlessDaemonGoes<T>(p: Promise<T>, epoch: number): Promise<T> {
    let fail!: () => void;
    const moved = new Promise<never>((_, reject) => {
      fail = () => reject(Object.assign(new Error('the Docker daemon connection closed'), { code: 'ECONNRESET' }));
    });
    if (this.epoch !== epoch) fail();
    else this.epochWaiters.add(fail);
    try {
      return await Promise.race([p, moved]);
    } finally {
      this.epochWaiters.delete(fail);
    }
  }

  /**
   * Follows the daemon's event stream for as long as this runtime lives; each time it
   * breaks (the daemon stopped or restarted) the epoch moves on. The socket is unref'd
   * so it never keeps the process alive.
   */
  private watchDaemon(): void {
    if (this.watchingDaemon) return;
    this.watchingDaemon = true;
    void (async () => {
      for (;;) {
        try {
          const events = (await this.docker.getEvents({ filters: { type: ['daemon'] } })) as NodeJS.ReadableStream & { socket?: { unref?: () => void } };
          events.socket?.unref?.();
          events.resume();
          await new Promise<void>((resolve) => {
            events.once('end', resolve);
            events.once('close', resolve);
            events.once('error', () => resolve());
          });
        } catch {
          // The daemon does not answer: count it as gone, try again shortly.
        }
        this.epoch++;
        for (const wake of this.epochWaiters) wake();
        this.epochWaiters.clear();
        await new Promise((r) => setTimeout(r, 500).unref());
      }
    })();
  }

  /** Pings the daemon until it answers or `daemonWaitMs` passes. */
  private async daemonBack(): Promise<boolean> {
    const deadline = Date.now() + this.daemonWaitMs;
    while (Date.now() < deadline) {
      if (await this.docker.ping().then(() => true, () => false)) return true;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return false;
  }
}
