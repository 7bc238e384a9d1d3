import { withNodeState } from '../support/node-state';
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
    // It tells the gateway, with its beat in Redis, that it can run nothing and why, so the
    // node reports Unavailable and refuses tasks; the problem travels with the beat, for the
    // gateway and anything that shows the node's health.
    await withNodeState(stack, async (node) => {
      const beats = await waitFor('the executor beat', async () => {
        const parsed = await node.executors.all();
        return parsed.length && parsed.every((b) => b.problem) ? parsed : null;
      });
      expect(beats.map((b) => b.runtime)).toEqual(['none']);
      expect(beats[0].problem).toMatch(/^the task image hivemind\/missing-image:test is missing and pulling it failed: .+; build it with scripts\/build-task-image\.sh/);
      // And it is not ready (it does not consume tasks): its readiness endpoint does not say ready.
      const ready = await fetch(`http://127.0.0.1:${executor.httpPort}/health/ready`).then((r) => r.status, () => 'not listening');
      expect(ready).not.toBe(200);
    });
  });
});
