import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Job, Queue } from 'bullmq';
import { QueueName } from '@hivemind/shared/queue/queues';
import { queueOf } from '../support/node-state';
import { Stack, waitFor } from '../support/stack';

/**
 * Job payloads in Redis are not trusted with file paths: anyone who can write to the
 * node's Redis must not make the executor or the gateway delete, or upload, a file of
 * its choosing. Paths are derived from the task id, and a job whose id is not a task id
 * is refused. Through the real services, with jobs written straight into their queues.
 */
describe('hostile job payloads', () => {
  let stack: Stack;
  let tasks: Queue;
  let results: Queue;
  let victims: string;

  beforeAll(async () => {
    stack = await Stack.create('payload', { LOG_LEVEL: 'info' });
    await stack.startAll();
    tasks = queueOf(stack, QueueName.Tasks);
    results = queueOf(stack, QueueName.Results);
    victims = path.join(stack.dir, 'victims');
    await fs.mkdir(victims);
  });

  afterAll(async () => {
    await tasks?.close();
    await results?.close();
    await stack?.stopAll();
  });

  async function victim(name: string): Promise<string> {
    const file = path.join(victims, name);
    await fs.writeFile(file, `precious ${randomBytes(8).toString('hex')}\n`);
    return file;
  }

  async function settled(queue: Queue, jobId: string): Promise<string> {
    return waitFor(`job ${jobId} to be taken`, async () => {
      const job = await Job.fromId(queue, jobId);
      if (!job) return 'removed';
      const state = await job.getState();
      return state === 'completed' || state === 'failed' ? state : null;
    }, 60_000);
  }

  it('a task job naming any zip file: the executor never deletes that file', async () => {
    const file = await victim('task-zip.txt');
    const job = {
      taskId: 'forged-task',
      zipFile: file,
      root: '',
      entry: { file: 'main.py', kind: 'python' },
      request: { cpuScore: 0, gpuScore: 0, memoryGb: 0, gpuMemoryGb: 0 },
      limits: { nanoCpus: 1e9, memoryBytes: 256 * 1048576 },
      receivedAt: Date.now(),
      acceptedAt: Date.now(),
    };
    await tasks.add('run', job, { jobId: 'forged-task' });
    // The node holds no such task: the executor only tidies up the task's own files.
    expect(await settled(tasks, 'forged-task')).toBe('completed');
    expect(await fs.readFile(file, 'utf8')).toMatch(/^precious /);
  });

  it('a job whose id is not a task id is refused without touching anything', async () => {
    const file = await victim('bad-id.txt');
    const badId = `..${path.sep}..${path.sep}${path.basename(file)}`;
    await tasks.add('run', { taskId: badId, zipFile: file, root: '', entry: { file: 'main.py', kind: 'python' } }, { jobId: badId });
    expect(await settled(tasks, badId)).toBe('failed');
    const failed = await Job.fromId(tasks, badId);
    expect(failed?.failedReason).toMatch(/invalid task job payload: taskId/);
    expect(await fs.readFile(file, 'utf8')).toMatch(/^precious /);

    // The job id and the task id must agree: a job cannot act on another task's files.
    await tasks.add('run', { taskId: 'someone-else', root: '', entry: { file: 'main.py', kind: 'python' }, request: { cpuScore: 0, gpuScore: 0, memoryGb: 0, gpuMemoryGb: 0 }, limits: { nanoCpus: 1e9, memoryBytes: 256 * 1048576 }, receivedAt: 1, acceptedAt: 1 }, { jobId: 'mismatch' });
    expect(await settled(tasks, 'mismatch')).toBe('failed');
    expect((await Job.fromId(tasks, 'mismatch'))?.failedReason).toMatch(/is not its task id/);
  });

  it('a result job naming any file: the gateway neither deletes nor uploads it', async () => {
    const file = await victim('result.zip');
    const now = Date.now();
    await results.add(
      'upload',
      { taskId: 'forged-result', resultFile: file, status: 'Success', reason: 'exited with code 0', exitCode: 0, receivedAt: now, startedAt: now, finishedAt: now },
      { jobId: 'forged-result' },
    );
    // The node does not hold the task: refused as already delivered, its own result path tidied.
    expect(await settled(results, 'forged-result')).toBe('failed');
    expect(await fs.readFile(file, 'utf8')).toMatch(/^precious /);
  });
});
