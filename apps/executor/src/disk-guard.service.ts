import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { Ticker } from '@hivemind/shared/util/ticker';
import { ReconcilerService } from './reconciler.service';
import { RuntimeService } from './runtime/runtime.service';

export interface DiskReport {
  freeMb: number;
  low: boolean;
  keptRemoved: string[];
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
 * and files (a reconcile).
 */
@Injectable()
export class DiskGuardService implements OnApplicationShutdown {
  private readonly ticker: Ticker;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly runtimes: RuntimeService,
    private readonly reconciler: ReconcilerService,
  ) {
    this.ticker = new Ticker('disk-guard', config.DISK_CHECK_INTERVAL * 1000, async () => void (await this.check()), (_n, err) =>
      this.logger.warn({ err: (err as Error).message }, 'disk check failed'),
    );
  }

  start(): void {
    this.ticker.start();
  }

  onApplicationShutdown(): void {
    this.ticker.stop();
  }

  private async kept(): Promise<{ name: string; file: string; mtimeMs: number }[]> {
    const dir = path.join(this.config.workDir, 'kept');
    const out = [];
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const st = await fs.lstat(path.join(dir, name)).catch(() => null);
      if (st) out.push({ name, file: path.join(dir, name), mtimeMs: st.mtimeMs });
    }
    return out.sort((a, b) => a.mtimeMs - b.mtimeMs);
  }

  async check(): Promise<DiskReport> {
    const c = this.config;
    const report: DiskReport = { freeMb: 0, low: false, keptRemoved: [], imagesRemoved: [] };
    const expiry = Date.now() - c.FAILED_WORKSPACE_RETENTION * 1000;
    for (const k of await this.kept()) {
      if (k.mtimeMs > expiry) continue;
      await fs.rm(k.file, { recursive: true, force: true });
      report.keptRemoved.push(k.name);
    }
    await fs.mkdir(c.workDir, { recursive: true });
    report.freeMb = await freeMb(c.workDir);
    report.low = report.freeMb < c.MIN_FREE_DISK_MB;
    if (report.low) {
      this.logger.warn({ freeMb: Math.round(report.freeMb), minFreeMb: c.MIN_FREE_DISK_MB }, 'low on disk: collecting garbage');
      for (const k of await this.kept()) {
        if ((await freeMb(c.workDir)) >= c.MIN_FREE_DISK_MB) break;
        await fs.rm(k.file, { recursive: true, force: true });
        report.keptRemoved.push(k.name);
      }
      // Images this executor pulled that nothing uses any more.
      report.imagesRemoved.push(...((await this.runtimes.runtime?.removeUnusedImages(this.runtimes.pulled).catch(() => [])) ?? []));
      await this.reconciler.reconcile();
      report.freeMb = await freeMb(c.workDir);
    }
    if (report.keptRemoved.length || report.imagesRemoved.length) this.logger.info(report, 'disk clean-up');
    return report;
  }
}
