import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadWorkerConfig } from '@hivemind/shared/config/worker-config';
import { outcomes } from '@hivemind/shared/task-format/outcome';
import { TaskCancelled } from './cancellation';
import { DOWNLOAD_DIR, InstallContext, installRequirements, PACKAGES_DIR } from './install-requirements.step';
import { RedactedOutput, secretsOf } from './install-output';
import { RunExit, RunSpec, TaskRuntime } from '../runtime/task-runtime.port';

const PASSWORD = 's3cr3t-p%40ss';
const INDEX = `https://hm-user:${PASSWORD}@index.example:8443/private/simple`;

type Behaviour = (spec: RunSpec, out: (b: Buffer) => void) => Promise<RunExit>;

/** A runtime that records what it was asked to run and plays `behave` for each run. */
function fakeRuntime(behave: Behaviour) {
  const runs: RunSpec[] = [];
  const calls: string[] = [];
  const runtime = {
    name: 'process',
    workspacePath: (p: string) => p,
    workspaceOwner: () => null,
    start: async (spec: RunSpec, out: (b: Buffer) => void) => {
      runs.push(spec);
      calls.push(`start ${spec.command[5]}`);
      let stop!: () => void;
      const stopped = new Promise<RunExit>((r) => (stop = () => r({ exitCode: 143, oomKilled: false })));
      return {
        startedAt: Date.now(),
        done: Promise.race([behave(spec, out), stopped]),
        stop: async () => {
          calls.push('stop');
          stop();
        },
        usage: async () => null,
      };
    },
    remove: async (_id: string, phase?: string) => void calls.push(`remove ${phase}`),
  } as unknown as TaskRuntime;
  return { runtime, runs, calls };
}

/** Plays pip: download writes a wheel and prints the URL as pip would; install unpacks it. */
const pipWorks: Behaviour = async (spec, out) => {
  if (spec.command[5] === 'download') {
    out(Buffer.from(`Looking in indexes: https://hm-user:****@index.example:8443/private/simple\nCollecting hmdemo==1.0\n  Downloading ${spec.env.PIP_INDEX_URL}/hmdemo-1.0.whl\n`));
    await fs.writeFile(path.join(spec.workspace, 'wheels', 'hmdemo-1.0-py3-none-any.whl'), 'wheel');
  } else {
    await fs.mkdir(path.join(spec.workspace, 'hmdemo'));
    out(Buffer.from('Successfully installed hmdemo-1.0\n'));
  }
  return { exitCode: 0, oomKilled: false };
};

describe('installRequirements', () => {
  let workspace: string;
  let notes: string[];
  let output: string;
  let ctl: AbortController;

  beforeEach(async () => {
    workspace = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-install-'));
    notes = [];
    output = '';
    ctl = new AbortController();
  });
  afterEach(() => fs.rm(workspace, { recursive: true, force: true }));

  function ctx(runtime: TaskRuntime, env: Record<string, string> = {}): InstallContext {
    return {
      taskId: 't-1',
      workspace,
      runtime,
      limits: { nanoCpus: 1e9, memoryBytes: 256 << 20 },
      config: loadWorkerConfig({ WORK_DIR: workspace, PIP_INDEX_URL: INDEX, PIP_TRUSTED_HOST: 'index.example, other', PIP_PROXY: 'http://px:proxypw@proxy.lan:3128', ...env }),
      note: (l) => notes.push(l),
      push: (c) => (output += c.toString()),
      signal: ctl.signal,
    };
  }

  it('does nothing without a requirements.txt, or when REQUIREMENTS_INSTALL is off', async () => {
    const { runtime, runs } = fakeRuntime(pipWorks);
    expect(await installRequirements(ctx(runtime))).toBeNull();
    await fs.writeFile(path.join(workspace, 'requirements.txt'), 'hmdemo\n');
    expect(await installRequirements(ctx(runtime, { REQUIREMENTS_INSTALL: 'false' }))).toBeNull();
    expect(runs).toEqual([]);
  });

  it('refuses a file the policy refuses, without running anything', async () => {
    const { runtime, runs } = fakeRuntime(pipWorks);
    await fs.writeFile(path.join(workspace, 'requirements.txt'), 'hmdemo\n--extra-index-url http://probe/\n');
    const o = await installRequirements(ctx(runtime));
    expect(o).toMatchObject({ code: 'install_refused', status: 'Failed' });
    expect(o?.reason).toMatch(/^requirements.txt refused: line 2 "--extra-index-url http:\/\/probe\/": --extra-index-url is not allowed/);
    expect(runs).toEqual([]);
    await fs.rm(path.join(workspace, 'requirements.txt'));
    await fs.symlink('/etc/passwd', path.join(workspace, 'requirements.txt'));
    expect((await installRequirements(ctx(runtime)))?.reason).toBe('requirements.txt refused: it is not a regular file');
    await fs.rm(path.join(workspace, 'requirements.txt'));
    await fs.writeFile(path.join(workspace, 'requirements.txt'), 'a\nb\nc\n');
    expect((await installRequirements(ctx(runtime, { REQUIREMENTS_MAX_LINES: '2' })))?.code).toBe('install_refused');
    expect(runs).toEqual([]);
  });

  it('downloads with network and credentials by environment only, then installs offline; no secret reaches a log', async () => {
    const { runtime, runs, calls } = fakeRuntime(pipWorks);
    await fs.writeFile(path.join(workspace, 'requirements.txt'), 'hmdemo == 1.0  # pinned\n');
    // A task's own folder of that name is not trusted.
    await fs.mkdir(path.join(workspace, PACKAGES_DIR, 'pip'), { recursive: true });
    expect(await installRequirements(ctx(runtime))).toBeNull();
    expect(calls).toEqual(['start download', 'remove install', 'start install', 'remove install']);
    const [download, install] = runs;
    const staging = path.join(workspace, DOWNLOAD_DIR);
    expect(download).toMatchObject({ taskId: 't-1', workspace: staging, network: true, phase: 'install', entryKind: 'python' });
    expect(download.command).toEqual(expect.arrayContaining(['-I', 'download', '--only-binary=:all:', '--dest', `${staging}/wheels`, '--requirement', `${staging}/requirements.txt`]));
    expect(download.env).toMatchObject({ PIP_INDEX_URL: INDEX, PIP_TRUSTED_HOST: 'index.example other', PIP_PROXY: 'http://px:proxypw@proxy.lan:3128', PIP_CONFIG_FILE: '/dev/null' });
    expect(install).toMatchObject({ workspace: path.join(workspace, PACKAGES_DIR), network: false, phase: 'install' });
    expect(install.command).toEqual(expect.arrayContaining(['install', '--no-index', '--only-binary=:all:', '--find-links', `${staging}/wheels`, '--target', path.join(workspace, PACKAGES_DIR)]));
    expect(Object.keys(install.env)).not.toEqual(expect.arrayContaining(['PIP_INDEX_URL']));
    expect(install.env.PIP_PROXY).toBeUndefined();
    for (const r of runs) expect(r.command.join(' ')).not.toMatch(/s3cr3t|proxypw|hm-user|index.example/);
    // pip was handed the normalized file, not the task's.
    expect(notes.join('\n')).toContain('index.example:8443');
    for (const text of [notes.join('\n'), output]) {
      expect(text).not.toMatch(/s3cr3t|s3cr3t-p@ss|proxypw|hm-user|private\/simple\/hmdemo/);
    }
    expect(output).toContain('Successfully installed hmdemo-1.0');
    expect(output).toContain('Downloading index.example:8443/hmdemo-1.0.whl');
    expect(await fs.readdir(path.join(workspace, PACKAGES_DIR))).toEqual(['hmdemo']);
  });

  it('hands pip the normalized requirements', async () => {
    let seen = '';
    const { runtime } = fakeRuntime(async (spec, out) => {
      if (spec.command[5] === 'download') seen = await fs.readFile(path.join(spec.workspace, 'requirements.txt'), 'utf8');
      return pipWorks(spec, out);
    });
    await fs.writeFile(path.join(workspace, 'requirements.txt'), '# c\nrequests [socks] >= 2 ; python_version >= "3.8"\n');
    expect(await installRequirements(ctx(runtime))).toBeNull();
    expect(seen).toBe('requests[socks]>=2 ; python_version >= "3.8"\n');
  });

  it('a requirement with no wheel fails the task, naming it; nothing is installed', async () => {
    const { runtime, runs } = fakeRuntime(async (_spec, out) => {
      out(Buffer.from('ERROR: Could not find a version that satisfies the requirement hmsdist==1.0 (from versions: none)\nERROR: No matching distribution found for hmsdist==1.0\n'));
      return { exitCode: 1, oomKilled: false };
    });
    await fs.writeFile(path.join(workspace, 'requirements.txt'), 'hmsdist==1.0\n');
    const o = await installRequirements(ctx(runtime));
    expect(o).toMatchObject({ code: 'install_failed', status: 'Failed' });
    expect(o?.reason).toBe(
      'installing requirements.txt failed: no wheel for "hmsdist==1.0" on the package index index.example:8443: it is not there, or it has only a source distribution, which this node does not build (REQUIREMENTS_ALLOW_SDIST=false)',
    );
    expect(runs).toHaveLength(1);
    await expect(fs.stat(path.join(workspace, DOWNLOAD_DIR))).rejects.toThrow();
  });

  it("other pip failures quote pip's ERROR lines, redacted", async () => {
    const { runtime } = fakeRuntime(async (spec, out) => {
      if (spec.command[5] === 'download') return pipWorks(spec, out);
      out(Buffer.from(`ERROR: THESE PACKAGES DO NOT MATCH THE HASHES from ${INDEX}\n`));
      return { exitCode: 1, oomKilled: false };
    });
    await fs.writeFile(path.join(workspace, 'requirements.txt'), 'hmdemo\n');
    const o = await installRequirements(ctx(runtime));
    expect(o?.reason).toBe('installing requirements.txt failed: pip install exited with code 1: ERROR: THESE PACKAGES DO NOT MATCH THE HASHES from index.example:8443');
  });

  it('a stop stops and removes the running container and throws the reason', async () => {
    const { runtime, calls } = fakeRuntime(() => new Promise(() => undefined));
    await fs.writeFile(path.join(workspace, 'requirements.txt'), 'hmdemo\n');
    const running = installRequirements(ctx(runtime));
    await new Promise((r) => setTimeout(r, 50));
    const reason = new TaskCancelled(outcomes.stopped('stopped at the request of the task owner'));
    ctl.abort(reason);
    await expect(running).rejects.toBe(reason);
    expect(calls).toEqual(['start download', 'stop', 'remove install']);
    await expect(fs.stat(path.join(workspace, DOWNLOAD_DIR))).rejects.toThrow();
  });

  it('INSTALL_TIMEOUT bounds both runs together', async () => {
    const { runtime, calls } = fakeRuntime(() => new Promise(() => undefined));
    await fs.writeFile(path.join(workspace, 'requirements.txt'), 'hmdemo\n');
    const o = await installRequirements(ctx(runtime, { INSTALL_TIMEOUT: '1' }));
    expect(o).toEqual(outcomes.timedOut(1, 'INSTALL_TIMEOUT'));
    expect(calls).toEqual(['start download', 'stop', 'remove install']);
  });

  it('downloads larger than the workspace quota end the step over budget', async () => {
    const { runtime, runs } = fakeRuntime(async (spec) => {
      await fs.writeFile(path.join(spec.workspace, 'wheels', 'big.whl'), Buffer.alloc(2 << 20));
      return { exitCode: 0, oomKilled: false };
    });
    await fs.writeFile(path.join(workspace, 'requirements.txt'), 'big\n');
    const o = await installRequirements(ctx(runtime, { WORKSPACE_QUOTA_MB: '1' }));
    expect(o?.code).toBe('step_over_budget');
    expect(runs).toHaveLength(1);
  });
});

describe('RedactedOutput', () => {
  it('takes credentials out even when a chunk splits them, and strips user info from any URL', () => {
    let out = '';
    const r = new RedactedOutput(secretsOf(INDEX), (b) => (out += b.toString()));
    const text = `a ${PASSWORD} b ${decodeURIComponent(PASSWORD)}\nc https://someone:pw@elsewhere/x\n${INDEX} tail`;
    for (let i = 0; i < text.length; i += 3) r.push(Buffer.from(text.slice(i, i + 3)));
    r.flush();
    expect(out).toBe('a **** b ****\nc https://elsewhere/x\nindex.example:8443 tail');
    expect(r.tail).toBe(out);
  });

  it('PIP_INDEX_URL must be an http(s) URL, and the error does not echo it', () => {
    expect(() => loadWorkerConfig({ PIP_INDEX_URL: 'ftp://u:topsecret@x/' })).toThrow(/PIP_INDEX_URL: expected an http/);
    expect(() => loadWorkerConfig({ PIP_INDEX_URL: 'ftp://u:topsecret@x/' })).not.toThrow(/topsecret/);
  });
});
