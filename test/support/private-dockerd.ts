import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import { recordDir, removeContainers, removeTree } from './cleanup';
import { waitFor } from './stack';

/** Daemons not yet destroyed (jest-setup destroys what a test file left). */
const live = new Set<PrivateDockerd>();

/**
 * A second Docker daemon of the test's own (own socket, data and exec roots, no
 * bridge), so a test can stop and restart it without touching the daemon every other
 * test uses. Images are copied in from the main daemon with save/load.
 */
export class PrivateDockerd {
  private proc: ChildProcess | null = null;
  readonly socket: string;
  readonly docker: Docker;

  private constructor(
    readonly dir: string,
    readonly bridge: string,
  ) {
    this.socket = path.join(dir, 'docker.sock');
    this.docker = new Docker({ socketPath: this.socket });
  }

  /**
   * The daemon gets a bridge of its own. Not `--bridge=none`: a daemon started that
   * way deletes the host's `docker0`, which the main daemon's containers use.
   */
  static async create(): Promise<PrivateDockerd> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-dockerd-'));
    recordDir(dir);
    const bridge = `hmbr${randomBytes(3).toString('hex')}`;
    const d = new PrivateDockerd(dir, bridge);
    live.add(d);
    const octet = 100 + (randomBytes(1)[0] % 100);
    try {
      execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
      execFileSync('ip', ['addr', 'add', `10.${octet}.0.1/24`, 'dev', bridge]);
      execFileSync('ip', ['link', 'set', bridge, 'up']);
    } catch (err) {
      await d.destroy();
      throw err;
    }
    return d;
  }

  /** Destroys every daemon not yet destroyed. */
  static async destroyAll(): Promise<void> {
    await Promise.all([...live].map((d) => d.destroy()));
  }

  async start(opts: { liveRestore?: boolean } = {}): Promise<void> {
    const args = [
      `--data-root=${path.join(this.dir, 'root')}`,
      `--exec-root=${path.join(this.dir, 'exec')}`,
      `--pidfile=${path.join(this.dir, 'docker.pid')}`,
      `--host=unix://${this.socket}`,
      `--bridge=${this.bridge}`,
      '--iptables=false',
      '--ip-masq=false',
      '--shutdown-timeout=2',
      ...(opts.liveRestore ? ['--live-restore'] : []),
    ];
    const log = createWriteStream(path.join(this.dir, 'dockerd.log'), { flags: 'a' });
    this.proc = spawn('dockerd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout?.pipe(log);
    this.proc.stderr?.pipe(log);
    await waitFor('the private Docker daemon to answer', async () => this.docker.ping().then(() => true, () => false), 60_000);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
    this.proc = null;
  }

  async restart(opts: { liveRestore?: boolean } = {}): Promise<void> {
    await this.stop();
    await this.start(opts);
  }

  /** Copies an image from the main daemon into this one. */
  async loadImage(image: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'inherit'] });
      const load = spawn('docker', ['-H', `unix://${this.socket}`, 'load'], { stdio: ['pipe', 'ignore', 'inherit'] });
      save.stdout.pipe(load.stdin);
      load.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker load exited with ${code}`))));
      save.once('error', reject);
      load.once('error', reject);
    });
  }

  /**
   * Removes the daemon and everything it made, whatever state a failed or timed-out
   * test left it in: its containers (while it still answers), the daemon itself, any
   * process still naming its folder (its containerd, container shims), every mount
   * under its folder (its data root's bind mount, overlay layers, network namespaces:
   * lazily where busy), loop devices, its bridge, then the folder. Returns what it had
   * to remove besides the containers and the daemon.
   */
  async destroy(): Promise<string[]> {
    live.delete(this);
    const answers = await this.docker.ping().then(() => true, () => false);
    if (answers) await removeContainers(this.docker, {});
    await this.stop().catch(() => undefined);
    const left = await removeTree(this.dir);
    try {
      execFileSync('ip', ['link', 'del', this.bridge], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    return left;
  }
}
