import IORedis from 'ioredis';
import { Stack, waitFor } from '../support/stack';

/** The executor's start-up check of the default task images. */
describe('task images at executor start', () => {
  let stack: Stack;

  afterAll(async () => {
    await stack?.stopAll();
  });

  it('a missing default image that cannot be pulled fails readiness with a message naming it and the build script', async () => {
    stack = await Stack.create('images', { TASK_IMAGE: 'hivemind/missing-image:test', TASK_SHELL_IMAGE: 'hivemind/task-runtime:latest' });
    const executor = await stack.start('executor', {}, /executor not ready/);
    const line = executor.output().split('\n').find((l) => l.includes('executor not ready'))!;
    const problem = (JSON.parse(line) as { problem: string }).problem;
    expect(problem).toMatch(/^the task image hivemind\/missing-image:test is missing and pulling it failed: .+; build it with scripts\/build-task-image\.sh/);
    expect(executor.output()).not.toContain('executor ready; consuming tasks');
    // It tells the gateway it can run nothing, so the node reports Unavailable and refuses tasks.
    const redis = new IORedis(stack.env.REDIS_URL);
    try {
      const beats = await waitFor('the executor beat', async () => {
        const all = Object.values(await redis.hgetall(`${stack.env.REDIS_PREFIX}:executors`));
        const parsed = all.map((v) => JSON.parse(v) as { runtime: string; problem: string | null });
        return parsed.length && parsed.every((b) => b.problem) ? parsed : null;
      });
      expect(beats.map((b) => b.runtime)).toEqual(['none']);
      // The problem travels with the beat, for the gateway and anything that shows the node's health.
      expect(beats[0].problem).toBe(problem);
    } finally {
      redis.disconnect();
    }
  });
});
