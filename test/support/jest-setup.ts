import { removeTempDirs } from './cleanup';
import { PrivateDockerd } from './private-dockerd';
import { Stack } from './stack';

// Integration and end-to-end tests start real processes and containers.
jest.setTimeout(180_000);

// Whatever a test file's own afterAll did (or did not get to do: a failure, a timeout),
// its stacks' processes, containers, mounts and folders go when the file ends; then its
// private Docker daemons (a stack's containers may live in one) and its temporary folders.
afterAll(async () => {
  await Stack.destroyAll();
  await PrivateDockerd.destroyAll();
  await removeTempDirs();
}, 170_000);
