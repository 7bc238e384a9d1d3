import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import type { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { DiskGuardService } from '../../apps/executor/src/disk-guard.service';
import type { ReconcilerService } from '../../apps/executor/src/reconciler.service';
import type { RuntimeService } from '../../apps/executor/src/runtime/runtime.service';
import { removeTree } from '../../apps/executor/src/workspace/remove-tree';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';

const run = promisify(execFile);
const logger = pino({ level: 'silent' });

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

/** A kept workspace, last touched `ageS` seconds ago. */
async function keptWorkspace(kept: string, name: string, ageS: number): Promise<string> {
  const dir = path.join(kept, name);
  await fs.mkdir(path.join(dir, 'sub'), { recursive: true });
  await fs.writeFile(path.join(dir, 'sub', 'out.txt'), 'result');
  const t = new Date(Date.now() - ageS * 1000);
  await fs.utimes(dir, t, t);
  return dir;
}

describe('disk guard', () => {
  let workDir: string;
  let mounted: string | null = null;
  const removedImages: string[][] = [];
  let reconciles = 0;

  const guard = (over: Partial<WorkerConfig>) => {
    const config = { workDir, FAILED_WORKSPACE_RETENTION: 60, MIN_FREE_DISK_MB: 0, DISK_CHECK_INTERVAL: 3600, ...over } as WorkerConfig;
    const runtimes = {
      pulled: ['sha256:aaa'],
      runtime: {
        removeUnusedImages: async (ids: string[]) => {
          removedImages.push(ids);
          return ids;
        },
      },
    } as unknown as RuntimeService;
    const reconciler = { reconcile: async () => void reconciles++ } as unknown as ReconcilerService;
    return new DiskGuardService(config, logger, runtimes, reconciler, new WorkDir(config.workDir));
  };

  beforeEach(async () => {
    workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-disk-guard-'));
    removedImages.length = 0;
    reconciles = 0;
  });

  afterEach(async () => {
    if (mounted) await run('umount', [mounted]).catch(() => undefined);
    mounted = null;
    await removeTree(workDir);
  });

  /**
   * The oldest kept workspace cannot be deleted at first: a volume is still mounted in it
   * (as when a task's loop volume could only be unmounted lazily), which the removal
   * never crosses into.
   */
  async function stuckKept(kept: string): Promise<string> {
    const stuck = await keptWorkspace(kept, 'task-stuck', 7200);
    mounted = path.join(stuck, 'vol');
    await fs.mkdir(mounted);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mounted]);
    await fs.writeFile(path.join(mounted, 'f'), 'x');
    const t = new Date(Date.now() - 7200_000);
    await fs.utimes(stuck, t, t);
    return stuck;
  }

  it('a kept workspace it cannot delete is skipped: the expired others go in the same pass, it goes on the next', async () => {
    const kept = path.join(workDir, 'kept');
    const stuck = await stuckKept(kept);
    const expired = await keptWorkspace(kept, 'task-expired', 3600);
    const fresh = await keptWorkspace(kept, 'task-fresh', 0);
    // Folders a failed task closed do not stop the guard either.
    await fs.chmod(path.join(expired, 'sub'), 0o000);
    const g = guard({});

    const first = await g.check();
    expect(first.keptRemoved).toEqual(['task-expired']);
    expect(first.keptFailed.map((f) => f.name)).toEqual(['task-stuck']);
    expect(first.keptFailed[0].error).toContain(stuck);
    expect(await exists(expired)).toBe(false);
    expect(await exists(stuck)).toBe(true);
    expect(await exists(fresh)).toBe(true);
    // What was mounted inside was not touched.
    expect(await fs.readFile(path.join(mounted!, 'f'), 'utf8')).toBe('x');

    await run('umount', [mounted!]);
    mounted = null;
    const second = await g.check();
    expect(second.keptRemoved).toEqual(['task-stuck']);
    expect(second.keptFailed).toEqual([]);
    expect(await exists(stuck)).toBe(false);
    expect(await fs.readdir(kept)).toEqual(['task-fresh']);
  });

  it('low on disk: the clean-up goes past a kept workspace it cannot delete, removes the others, unused images and leftovers', async () => {
    const kept = path.join(workDir, 'kept');
    await stuckKept(kept);
    const fresh = await keptWorkspace(kept, 'task-fresh', 0);
    // More free space than any disk has: always low.
    const report = await guard({ FAILED_WORKSPACE_RETENTION: 86_400, MIN_FREE_DISK_MB: 1e12 }).check();
    expect(report.low).toBe(true);
    expect(report.keptFailed.map((f) => f.name)).toEqual(['task-stuck']);
    expect(report.keptRemoved).toEqual(['task-fresh']);
    expect(await exists(fresh)).toBe(false);
    expect(removedImages).toEqual([['sha256:aaa']]);
    expect(report.imagesRemoved).toEqual(['sha256:aaa']);
    expect(reconciles).toBe(1);
  });
});
