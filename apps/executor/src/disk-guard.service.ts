import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { errorMessage } from '@hivemind/shared/util/errors';
import { Ticker } from '@hivemind/shared/util/ticker';
import { ReconcilerService } from './reconciler.service';
import { RuntimeService } from './runtime/runtime.service';
import { removeTree } from './workspace/remove-tree';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';

export interface DiskReport {
  freeMb: number;
  low: boolean;
  keptRemoved: string[];
  /** Kept workspaces that could not be deleted this pass (tried again on the next), with why. */
  keptFailed: { name: string; error: string }[];
  imagesRemoved: string[];
}

/** Free space under a folder, in MiB. */
export async function freeMb(dir: string): Promise<number> {
  const st = await fs.statfs(dir);
  return (st.bavail * st.bsize) / 1048576;
}

/**
 * Every DISK_CHECK_INTERVAL: deletes kept workspaces of failed tasks older than
 * FAILED_WORKSPACE_RETENTION; and when free space under WORK_DIR is below
 * MIN_FREE_DISK_MB (the gateway then reports the node non-Idle and refuses tasks),
 * collects garbage: every kept workspace (oldest first, until there is room again),
 * images this executor pulled that are now dangling, and its own leftover containers
 * and files (a reconcile). A kept workspace that cannot be deleted (a task may leave any
 * tree: mode-000 folders, paths deeper than PATH_MAX) is logged and skipped, the rest of
 * the pass goes on, and it is tried again on the next pass.
 */
@Injectable()
export class DiskGuardService implements OnApplicationShutdown {
  private readonly ticker: Ticker;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly runtimes: RuntimeService,
    private readonly reconciler: ReconcilerService,
    private readonly workDir: WorkDir,
  ) {
    this.ticker = new Ticker('disk-guard', config.DISK_CHECK_INTERVAL * 1000, async () => void (await this.check()), (_n, err) =>
      this.logger.warn({ err: errorMessage(err) }, 'disk check failed'),
    );
  }

  start(): void {
    this.ticker.start();
  }

  onApplicationShutdown(): void {
    this.ticker.stop();
  }

  private async kept(): Promise<{ name: string; file: string; mtimeMs: number }[]> {
    const dir = this.workDir.folder('kept');
    const out = [];
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const st = await fs.lstat(path.join(dir, name)).catch(() => null);
      if (st) out.push({ name, file: path.join(dir, name), mtimeMs: st.mtimeMs });
    }
    return out.sort((a, b) => a.mtimeMs - b.mtimeMs);
  }

  async check(): Promise<DiskReport> {
    const c = this.config;
    const report: DiskReport = { freeMb: 0, low: false, keptRemoved: [], keptFailed: [], imagesRemoved: [] };
    const expiry = Date.now() - c.FAILED_WORKSPACE_RETENTION * 1000;
    for (const k of await this.kept()) {
      if (k.mtimeMs <= expiry) await this.dropKept(k, report);
    }
    await fs.mkdir(c.workDir, { recursive: true });
    report.freeMb = await freeMb(c.workDir);
    report.low = report.freeMb < c.MIN_FREE_DISK_MB;
    if (report.low) {
      this.logger.warn({ freeMb: Math.round(report.freeMb), minFreeMb: c.MIN_FREE_DISK_MB }, 'low on disk: collecting garbage');
      const failed = new Set(report.keptFailed.map((f) => f.name));
      for (const k of await this.kept()) {
        if ((await freeMb(c.workDir)) >= c.MIN_FREE_DISK_MB) break;
        if (!failed.has(k.name)) await this.dropKept(k, report);
      }
      const runtime = this.runtimes.runtime;
      if (runtime && this.runtimes.pulled.length) {
        await Promise.resolve()
          .then(() => runtime.removeUnusedImages(this.runtimes.pulled))
          .then(
            (ids) => report.imagesRemoved.push(...ids),
            (err: unknown) => this.logger.warn({ err: errorMessage(err) }, 'unused task images not removed'),
          );
      }
      await this.reconciler.reconcile();
      report.freeMb = await freeMb(c.workDir);
    }
    if (report.keptRemoved.length || report.imagesRemoved.length) this.logger.info(report, 'disk clean-up');
    return report;
  }

  /** Deletes one kept workspace; one that cannot be deleted is noted and left for the next pass. */
  private async dropKept(k: { name: string; file: string; mtimeMs: number }, report: DiskReport): Promise<void> {
    try {
      await removeTree(k.file);
      report.keptRemoved.push(k.name);
    } catch (err) {
      report.keptFailed.push({ name: k.name, error: errorMessage(err) });
      // What was removed touched the folder: it keeps its age, so it is due again next time.
      const t = new Date(k.mtimeMs);
      await fs.utimes(k.file, t, t).catch(() => undefined);
      this.logger.warn({ kept: k.name, err: errorMessage(err) }, 'a kept workspace could not be deleted; trying again on the next check');
    }
  }
}
