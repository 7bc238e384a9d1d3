import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import {
  LABEL_INSTANCE,
  LABEL_MANAGED,
  mountsUnder,
  otherLiveRuns,
  readRunState,
  recordedDirs,
  removeTree,
  RUNS_DIR,
  testMounts,
  testNetworks,
  unmountAll,
} from './cleanup';

/**
 * Stops the run's Redis, then looks for what the run left on the host and removes it,
 * printing a clear list: a leftover is a defect of some test's clean-up, and CI must
 * leave the machine clean. Looked for: containers of the worker (`io.hivemind.managed`)
 * whose instance is a test stack's (`hmtest-…`), Docker networks named `hm-*`, mounts
 * and loop devices under os.tmpdir()/hm-*, and the folders the stacks and private
 * Docker daemons made. Things the run cannot be sure are its own (another jest run on
 * this machine is still going) are listed and left alone. HM_TEARDOWN_STRICT=1 makes
 * leftovers fail the run.
 */
export default async function globalTeardown(): Promise<void> {
  const pid = Number(process.env.TEST_REDIS_PID);
  if (pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  if (process.env.TEST_REDIS_DIR) await fs.rm(process.env.TEST_REDIS_DIR, { recursive: true, force: true }).catch(() => undefined);

  const run = process.env.HM_TEST_RUN;
  if (!run) return;
  const state = readRunState(run);
  const others = otherLiveRuns(run);
  const mine = (instance: string) => instance.startsWith(`hmtest-${run}-`);
  const removed: string[] = [];
  const notMine: string[] = [];

  // Containers of test stacks.
  const docker = new Docker();
  const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_MANAGED}=true`] } }).catch(() => [] as Docker.ContainerInfo[]);
  for (const c of containers) {
    const instance = c.Labels[LABEL_INSTANCE] ?? '';
    if (!instance.startsWith('hmtest-')) continue;
    const what = `container ${c.Names[0]?.replace(/^\//, '')} (instance ${instance}, ${c.State})`;
    if (!mine(instance) && others.length) {
      notMine.push(what);
      continue;
    }
    await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
    removed.push(what);
  }

  // Folders the run's stacks and daemons made, with their processes, mounts and loop devices.
  const keepFiles = process.env.HM_KEEP_TEST_DIRS === '1';
  for (const dir of recordedDirs(run)) {
    if (!existsSync(dir) && !mountsUnder(dir).length) continue;
    const left = await removeTree(dir, { keepFiles });
    removed.push(keepFiles ? `(kept) folder ${dir}` : `folder ${dir}`, ...left.map((l) => `  ${l}`));
  }

  // Any other mount under os.tmpdir()/hm-* that was not there when the run started.
  const before = new Set(state?.mounts ?? []);
  for (const m of testMounts().filter((x) => !before.has(x))) {
    if (others.length) {
      notMine.push(`mount ${m}`);
      continue;
    }
    await unmountAll(m);
    removed.push(`mount ${m}`);
    // Its loop device and folder: the mount's top folder under os.tmpdir().
    const top = path.join(os.tmpdir(), path.relative(os.tmpdir(), m).split('/')[0]);
    removed.push(...(await removeTree(top, { keepFiles })).map((l) => `  ${l}`));
  }

  // Docker networks named hm-* made since the run started (with whatever still uses them).
  const netsBefore = new Set(state?.networks ?? []);
  for (const name of testNetworks().filter((n) => !netsBefore.has(n))) {
    if (others.length) {
      notMine.push(`network ${name}`);
      continue;
    }
    const info = await docker.getNetwork(name).inspect().catch(() => null);
    for (const id of Object.keys(info?.Containers ?? {})) {
      await docker.getContainer(id).remove({ force: true, v: true }).catch(() => undefined);
      removed.push(`container ${info?.Containers?.[id]?.Name ?? id} (on network ${name})`);
    }
    await docker.getNetwork(name).remove().catch(() => undefined);
    removed.push(`network ${name}`);
  }

  await fs.rm(path.join(RUNS_DIR, `${run}.json`), { force: true });
  await fs.rm(path.join(RUNS_DIR, `${run}.dirs`), { force: true });
  try {
    execFileSync('rmdir', [RUNS_DIR], { stdio: 'ignore' });
  } catch {
    // another run's files are still there
  }

  if (removed.length) {
    console.error(
      [
        '',
        '========== LEFTOVERS: the tests did not clean these up (removed now) ==========',
        ...removed.map((r) => `  ${r}`),
        '================================================================================',
      ].join('\n'),
    );
  }
  if (notMine.length) {
    console.error(
      [
        `Left alone (another test run is still going: ${others.map((o) => `pid ${o.pid}`).join(', ')}):`,
        ...notMine.map((r) => `  ${r}`),
      ].join('\n'),
    );
  }
  if (removed.length && process.env.HM_TEARDOWN_STRICT === '1') throw new Error(`the tests left ${removed.length} things behind (listed above)`);
}
