import Docker from 'dockerode';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { ownerClient, taskInfo, uploadTask, waitForStatus } from '../support/pool';
import { Stack, waitFor } from '../support/stack';
import { unzip } from '../support/unzip';
import { makeZip } from '../support/zips';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const ML_IMAGE = 'hivemind/task-ml:latest';

/** A data-processing task: pandas over a CSV, a matplotlib chart, and what it finds around it. */
const PANDAS_TASK = `
import json, os, shutil, subprocess
import numpy as np, pandas as pd, requests
import matplotlib.pyplot as plt

out = os.environ["RESULT_DIR"]
df = pd.read_csv("temps.csv")
summary = df.groupby("city")["temp"].agg(["mean", "max"]).round(2)
summary.to_csv(os.path.join(out, "summary.csv"))
fig, ax = plt.subplots()
summary["mean"].plot.bar(ax=ax)
fig.savefig(os.path.join(out, "chart.png"))
git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[:2]
bash = subprocess.run(["bash", "-c", "echo $((6 * 7))"], capture_output=True, text=True).stdout.strip()
with open(os.path.join(out, "env.json"), "w") as f:
    json.dump({"interfaces": sorted(os.listdir("/sys/class/net")), "git": git, "bash": bash, "uid": os.getuid(),
               "std": round(float(np.std(df["temp"])), 3)}, f)
`;

/** A machine-learning task: scikit-learn and PyTorch on the bundled iris data set, offline. */
const SKLEARN_TASK = `
import json, os
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
import torch

X, y = load_iris(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
accuracy = LogisticRegression(max_iter=1000).fit(Xtr, ytr).score(Xte, yte)
means = torch.tensor(X, dtype=torch.float32).mean(dim=0)
with open(os.path.join(os.environ["RESULT_DIR"], "model.json"), "w") as f:
    json.dump({"accuracy": accuracy, "means": [round(v, 2) for v in means.tolist()], "cuda": torch.cuda.is_available(),
               "interfaces": sorted(os.listdir("/sys/class/net"))}, f)
`;

const CSV = 'city,temp\noslo,4\noslo,6\nrome,18\nrome,22\nrome,20\n';

/**
 * The task images through the real services, with no network in the task: a pandas
 * task in the default image, a scikit-learn + PyTorch task in the ML image its
 * hivemind.json names (TASK_IMAGES), and the refusals a manifest can earn.
 */
describe('task images', () => {
  let stack: Stack;
  let pool: PoolClient;

  beforeAll(async () => {
    await docker
      .getImage(ML_IMAGE)
      .inspect()
      .catch(() => {
        throw new Error(`${ML_IMAGE} is missing: build it with bash scripts/build-task-image.sh --ml`);
      });
    stack = await Stack.create('images', { TASK_IMAGES: `ml=${ML_IMAGE}`, TASK_DEFAULT_MEMORY_MB: '1024' });
    await stack.startAll();
    pool = ownerClient(stack.devpoolAddress);
    await pool.login();
  });

  afterAll(async () => {
    pool?.close();
    await stack?.stopAll();
  });

  async function run(taskId: string, zip: Buffer) {
    expect(await uploadTask(pool, taskId, zip)).toEqual({ success: true, message: `task ${taskId} uploaded` });
    const done = await waitForStatus(pool, taskId, ['COMPLETED', 'FAILED'], 180_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.logs()}`);
    });
    const res = await pool.call(pool.master, pool.master.getTaskResult, (token) => ({ task_id: taskId, token }));
    expect(res.success).toBe(true);
    return { status: done.status, files: await unzip(Buffer.from(res.result_zip)) };
  }

  it('runs a pandas task in the default image, without network', async () => {
    const { status, files } = await run('pandas-1', await makeZip([{ name: 'main.py', content: PANDAS_TASK }, { name: 'temps.csv', content: CSV }]));
    expect(files.get('task_logs.txt')?.data.toString()).not.toMatch(/Traceback/);
    expect(status).toBe('COMPLETED');
    expect(files.get('execution_log.txt')?.data.toString()).toContain('Status: Success');
    expect(files.get('result/summary.csv')?.data.toString()).toBe('city,mean,max\noslo,5.0,6\nrome,20.0,22\n');
    expect(files.get('result/chart.png')?.data.subarray(0, 8)).toEqual(Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'));
    expect(JSON.parse(files.get('result/env.json')!.data.toString())).toEqual({ interfaces: ['lo'], git: ['git', 'version'], bash: '42', uid: 10001, std: 7.483 });
  });

  it('runs a scikit-learn and PyTorch task in the ML image its hivemind.json names, without network', async () => {
    const { status, files } = await run(
      'sklearn-1',
      await makeZip([{ name: 'main.py', content: SKLEARN_TASK }, { name: 'hivemind.json', content: '{"image": "ml"}\n' }]),
    );
    expect(files.get('task_logs.txt')?.data.toString()).not.toMatch(/Traceback/);
    expect(status).toBe('COMPLETED');
    expect(files.get('execution_log.txt')?.data.toString()).toContain('Status: Success');
    const model = JSON.parse(files.get('result/model.json')!.data.toString()) as { accuracy: number; means: number[]; cuda: boolean; interfaces: string[] };
    expect(model.accuracy).toBeGreaterThan(0.9);
    expect(model).toMatchObject({ means: [5.84, 3.06, 3.76, 1.2], cuda: false, interfaces: ['lo'] });
    // The manifest travels with the task's files, like any other.
    expect(files.get('hivemind.json')?.data.toString()).toBe('{"image": "ml"}\n');
  });

  it('runs the same task without a manifest in the default image, where scikit-learn is not', async () => {
    const { files } = await run('sklearn-2', await makeZip([{ name: 'main.py', content: SKLEARN_TASK }]));
    expect(files.get('execution_log.txt')?.data.toString()).toContain('Status: Failed');
    expect(files.get('task_logs.txt')?.data.toString()).toContain("ModuleNotFoundError: No module named 'sklearn'");
    expect(files.has('result/model.json')).toBe(false);
  });

  it.each([
    ['an image the node does not offer', 'manifest-gpu', '{"image": "gpu"}', 'hivemind.json asks for the image "gpu"; this node offers default, ml (TASK_IMAGES)'],
    ['an unknown key', 'manifest-key', '{"image": "ml", "command": "sh"}', 'hivemind.json: unknown key "command"; the manifest knows only "image"'],
    ['a manifest that is not JSON', 'manifest-json', 'image: ml', 'hivemind.json: is not valid JSON ('],
  ])('refuses, at admission, a task whose hivemind.json has %s, and the pool hears why', async (_what, taskId, manifest, message) => {
    expect(await uploadTask(pool, taskId, await makeZip([{ name: 'main.py', content: 'print(1)' }, { name: 'hivemind.json', content: manifest }]))).toEqual({
      success: true,
      message: `task ${taskId} uploaded`,
    });
    const task = await waitFor(`${taskId} refused`, async () => {
      const t = await taskInfo(pool, taskId);
      return t?.message.startsWith('refused by alice: ') ? t : null;
    });
    expect(task.status).toBe('PENDING');
    expect(task.message).toContain(`refused by alice: ${message}`);
  });
});
