/**
 * Cost of the sandbox: the same short task in the hardened container the executor
 * creates, and in the same container with only `NetworkDisabled` (no capability drop,
 * no no-new-privileges, writable root, no tmpfs, no pids/memory/CPU limits, no init,
 * default IPC and log driver). Create / start / wait / remove, interleaved (alternating
 * which goes first) in one session; the figure is the ratio of medians.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import { DockerRuntime } from '../apps/executor/src/runtime/docker.runtime';
import { ROOT } from '../test/support/stack';
import { machine, writeSection } from './lib/report';
import { row, summarize } from './lib/stats';

const N = Number(process.env.BENCH_N ?? 20);
const WARMUP = 2;
const IMAGE = process.env.TASK_IMAGE ?? 'hivemind/task-runtime:latest';
// A little of everything a task does: start Python, import, compute, write to the workspace and /tmp.
const WORK = [
  'import hashlib, json, os, tempfile',
  'h = hashlib.sha256()',
  'for i in range(200000): h.update(i.to_bytes(4, "little"))',
  'open("out.bin", "wb").write(os.urandom(4 << 20))',
  'with tempfile.TemporaryFile() as f: f.write(os.urandom(1 << 20))',
  'print(json.dumps({"digest": h.hexdigest()}))',
].join('\n');

async function main(): Promise<void> {
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  const rt = new DockerRuntime(docker, { image: IMAGE, user: '10001:10001', pidsLimit: 256, tmpfsMb: 64, nodeId: 'bench', instance: 'hivemind-bench' });
  const ws = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-bench-hard-'));
  await fs.writeFile(path.join(ws, 'work.py'), WORK);
  await fs.chmod(ws, 0o777);

  const hardened = (i: number) =>
    rt.createOptions({
      taskId: `hard-${i}`,
      workspace: ws,
      command: ['python3', '-u', 'work.py'],
      env: { TASK_ID: `hard-${i}`, HOME: '/tmp' },
      limits: { nanoCpus: 1e9, memoryBytes: 1024 ** 3 },
      entryKind: 'python',
    });
  const plain = (i: number): Docker.ContainerCreateOptions => {
    const h = hardened(i);
    return {
      name: `hivemind-bench-plain-${i}`,
      Image: h.Image,
      Cmd: h.Cmd,
      WorkingDir: h.WorkingDir,
      User: h.User,
      Env: h.Env,
      NetworkDisabled: true,
      HostConfig: { Binds: h.HostConfig?.Binds },
    };
  };

  async function timed(opts: Docker.ContainerCreateOptions): Promise<number> {
    await docker.getContainer(opts.name as string).remove({ force: true }).catch(() => undefined);
    const t0 = performance.now();
    const c = await docker.createContainer(opts);
    let StatusCode: number;
    try {
      await c.start();
      ({ StatusCode } = (await c.wait()) as { StatusCode: number });
    } finally {
      await c.remove({ force: true });
    }
    if (StatusCode !== 0) throw new Error(`the work exited with ${StatusCode}`);
    return performance.now() - t0;
  }

  const hard: number[] = [];
  const bare: number[] = [];
  try {
    for (let i = 0; i < WARMUP + N; i++) {
      let h: number;
      let b: number;
      if (i % 2 === 0) {
        h = await timed(hardened(i));
        b = await timed(plain(i));
      } else {
        b = await timed(plain(i));
        h = await timed(hardened(i));
      }
      if (i >= WARMUP) {
        hard.push(h);
        bare.push(b);
      }
      process.stderr.write(`  run ${i + 1}/${WARMUP + N}: hardened ${h.toFixed(0)} ms, NetworkDisabled only ${b.toFixed(0)} ms\n`);
    }
    const hs = summarize(hard);
    const bs = summarize(bare);
    const ratio = hs.median / bs.median;
    const ratios = summarize(hard.map((h, i) => h / bare[i]));
    const body = [
      '## 10. Cost of the sandbox',
      '',
      'The same short task (Python start, hash 200,000 integers, write 4 MB to the workspace and',
      '1 MB to `/tmp`) run by create / start / wait / remove in the hardened container the',
      'executor creates (no network, all capabilities dropped, `no-new-privileges`, read-only',
      'root with a tmpfs `/tmp`, pids, memory and CPU limits, init, private IPC, no log driver,',
      'non-root user) and in the same container with only `NetworkDisabled` (same image, user,',
      `bind mount). ${N} interleaved pairs (alternating which runs first) after ${WARMUP} warm-up pairs.`,
      '',
      '| container | n | median | p25 – p75 | min – max |',
      '|---|---|---|---|---|',
      row('hardened', hs),
      row('`NetworkDisabled` only', bs),
      '',
      `**Ratio of medians: ${ratio.toFixed(3)}×** (target ≤ 1.05×; per-pair ratios: median ${ratios.median.toFixed(3)},` +
        ` p25–p75 ${ratios.p25.toFixed(3)}–${ratios.p75.toFixed(3)}). ${ratio <= 1.05 ? 'Target met.' : '**Target missed.**'}`,
      '',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}.`,
    ].join('\n');
    await writeSection(ROOT, 'hardening', body);
    console.log(body);
  } finally {
    await fs.rm(ws, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
