import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

/**
 * Runs the workspace volume tools (`mkfs.ext4`, `mount`, `umount`, `e2fsck`) through small
 * long-lived shell processes instead of spawning each one from the executor.
 *
 * Node spawns with fork(): the kernel copies the page tables of the whole executor (a
 * Node process of ~90 MB) before the child execs, and the executor then pays copy-on-
 * write faults. Measured in the throughput benchmark's profile, `ChildProcess.spawn` took
 * about 7 ms of the executor's CPU per call, three calls per task (the mount, the unmount,
 * the next spare's mkfs): about 20 ms of a task's ~36 ms. A shell of ~1 MB forks in a
 * fraction of a millisecond.
 *
 * Each helper is `/bin/sh` running a fixed loop: it reads one command per line (its
 * arguments separated by tabs), runs it if it is one of the tools, and answers with
 * the exit code and the tool's output (`<code> <bytes>\n<output>`). One command at a time
 * per helper; up to `max` helpers are started as commands overlap. A command past its time
 * limit has its helper killed, with the tool (the helper leads its own process group),
 * and the next command gets a fresh helper. A helper exits when its input closes, so it
 * never outlives the executor.
 */

/** The tools a helper runs (and `rm`, in one form only: see remove); anything else is refused on both sides. */
const TOOLS = ['mkfs.ext4', 'mount', 'umount', 'e2fsck'] as const;
export type VolumeTool = (typeof TOOLS)[number];
const RM = ['-rf', '--one-file-system', '--'];

const SCRIPT = `
tab=$(printf '\\t')
while IFS= read -r line; do
  set -f; IFS=$tab; set -- $line; unset IFS; set +f
  case "$1" in
    mkfs.ext4|mount|umount|e2fsck) out=$("$@" 2>&1 </dev/null); rc=$? ;;
    rm) if [ $# -eq 5 ] && [ "$2" = -rf ] && [ "$3" = --one-file-system ] && [ "$4" = -- ]; then out=$("$@" 2>&1 </dev/null); rc=$?
        else out="rm runs only as: rm -rf --one-file-system -- DIR"; rc=127; fi ;;
    *) out="not a volume tool: $1"; rc=127 ;;
  esac
  printf '%s %s\\n%s' "$rc" "\${#out}" "$out"
done
`;

/** A tool that ended with a non-zero exit code; `stderr` is what it printed. */
export class VolumeToolError extends Error {
  constructor(
    readonly tool: VolumeTool | 'rm',
    readonly exitCode: number,
    readonly stderr: string,
  ) {
    super(`${tool} failed (exit code ${exitCode})${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
  }
}

interface Pending {
  resolve: (r: { code: number; output: string }) => void;
  reject: (err: Error) => void;
}

class Helper {
  private readonly proc: ChildProcess;
  private buf: Buffer = Buffer.alloc(0);
  private pending: Pending | null = null;
  dead = false;

  constructor() {
    this.proc = spawn('/bin/sh', ['-c', SCRIPT], {
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' },
    });
    this.proc.unref();
    for (const s of [this.proc.stdin, this.proc.stdout] as unknown as { unref?: () => void }[]) s?.unref?.();
    this.proc.stdout!.on('data', (c: Buffer) => this.read(c));
    this.proc.stdin!.on('error', () => undefined);
    this.proc.on('error', (err) => this.fail(err));
    this.proc.on('exit', (code, signal) => this.fail(new Error(`the volume tool helper exited (${signal ?? `code ${code}`})`)));
  }

  run(args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill();
        reject(new Error(`${args[0]} did not finish within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      const done = () => clearTimeout(timer);
      this.pending = {
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
      };
      this.proc.stdin!.write(`${args.join('\t')}\n`);
    });
  }

  kill(): void {
    this.dead = true;
    try {
      process.kill(-this.proc.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
  }

  private read(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const nl = this.buf.indexOf(10);
    if (nl === -1) return;
    const m = /^(\d+) (\d+)$/.exec(this.buf.subarray(0, nl).toString('latin1'));
    if (!m) return this.fail(new Error('the volume tool helper answered something unreadable'));
    const len = Number(m[2]);
    if (this.buf.length < nl + 1 + len) return;
    const output = this.buf.subarray(nl + 1, nl + 1 + len).toString('utf8');
    this.buf = this.buf.subarray(nl + 1 + len);
    const p = this.pending;
    this.pending = null;
    p?.resolve({ code: Number(m[1]), output });
  }

  private fail(err: Error): void {
    if (!this.dead) this.kill();
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }
}

export class VolumeTools {
  private readonly idle: Helper[] = [];
  private started = 0;
  private readonly queue: ((h: Helper) => void)[] = [];

  constructor(private readonly max = 4) {}

  /** Runs `tool args…`; rejects with a VolumeToolError on a non-zero exit, or an Error on a timeout. */
  async run(tool: VolumeTool, args: string[], timeoutMs: number): Promise<void> {
    if (!TOOLS.includes(tool)) throw new Error(`not a volume tool: ${tool}`);
    return this.exec(tool, args, timeoutMs);
  }

  /**
   * Removes `dir` and everything under it with `rm -rf --one-file-system` (coreutils walks
   * the tree with openat and never follows a link a task made, however the tree changes
   * meanwhile); rejects like run.
   */
  async remove(dir: string, timeoutMs: number): Promise<void> {
    if (!path.isAbsolute(dir)) throw new Error(`rm: not an absolute path: ${dir}`);
    return this.exec('rm', [...RM, dir], timeoutMs);
  }

  private async exec(tool: VolumeTool | 'rm', args: string[], timeoutMs: number): Promise<void> {
    const bad = args.find((a) => !a || /[\t\n\0]/.test(a));
    if (bad !== undefined) throw new Error(`${tool}: an argument is empty or holds a tab or a line break: ${JSON.stringify(bad)}`);
    const helper = await this.take();
    try {
      const { code, output } = await helper.run([tool, ...args], timeoutMs);
      if (code !== 0) throw new VolumeToolError(tool, code, output);
    } finally {
      this.give(helper);
    }
  }

  private take(): Promise<Helper> {
    for (let h = this.idle.pop(); h; h = this.idle.pop()) {
      if (!h.dead) return Promise.resolve(h);
      this.started--;
    }
    if (this.started < this.max) {
      this.started++;
      return Promise.resolve(new Helper());
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private give(helper: Helper): void {
    if (helper.dead) {
      this.started--;
      const next = this.queue.shift();
      if (next) {
        this.started++;
        next(new Helper());
      }
      return;
    }
    const next = this.queue.shift();
    if (next) next(helper);
    else this.idle.push(helper);
  }
}

/** The executor's helpers (one process, one set). */
export const volumeTools = new VolumeTools();
