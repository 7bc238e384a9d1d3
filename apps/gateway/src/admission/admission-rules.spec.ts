import { ContentFacts, refuseContent, refuseRequest, RequestFacts } from './admission-rules';

const clear: RequestFacts = {
  draining: false,
  paused: false,
  taskId: 'task-1',
  taskIdError: null,
  cpuOnly: false,
  asksGpu: false,
  owner: null,
  fitError: null,
  held: false,
  refusedResultWaiting: false,
};

const MB = 1048576;
const fits: ContentFacts = {
  zip: { uncompressedBytes: 10 * MB },
  imageError: null,
  zipBytes: 2 * MB,
  maxDiskBytes: 10 * 1024 * MB,
  maxDiskGb: 10,
  freeBytes: 500 * MB,
  storeError: null,
  quotaBytes: 100 * MB,
  lowDisk: null,
  hasExecutor: true,
};

describe('admission rules before the zip is read', () => {
  it('admits a request when nothing stands in the way', () => {
    expect(refuseRequest(clear)).toBeNull();
  });

  it.each<[string, Partial<RequestFacts>, string, string | RegExp]>([
    ['draining', { draining: true }, 'draining', 'the node is shutting down and takes no new tasks'],
    ['paused', { paused: true }, 'paused', 'the node is paused by its owner and takes no new tasks'],
    ['an invalid task id', { taskIdError: 'task_id must be 1 to 128 characters' }, 'invalid_task_id', 'task_id must be 1 to 128 characters'],
    ['a GPU asked of a CPU-only node', { cpuOnly: true, asksGpu: true }, 'cpu_only', /CPU-only mode \(CPU_ONLY\)/],
    ['the owner first', { owner: { message: "the machine's owner is using it" } }, 'owner', "the machine's owner is using it"],
    ['a request that never fits', { fitError: 'memory_gb 64 is more than this node has (8 GB)' }, 'does_not_fit', 'memory_gb 64 is more than this node has (8 GB)'],
    ['a task already held', { held: true }, 'duplicate', 'task task-1 is already in flight on this node'],
    ['a task whose refused result still waits', { refusedResultWaiting: true }, 'duplicate', /task task-1 already ran on this node; its result is still waiting/],
  ])('refuses %s', (_what, change, kind, message) => {
    const r = refuseRequest({ ...clear, ...change });
    expect(r?.kind).toBe(kind);
    expect(r?.message).toMatch(message);
  });

  it('lets a GPU request through on a node that gives GPUs, and a CPU request through a CPU-only node', () => {
    expect(refuseRequest({ ...clear, asksGpu: true })).toBeNull();
    expect(refuseRequest({ ...clear, cpuOnly: true })).toBeNull();
  });

  it("puts the node's own state first, then lasting faults of the request, then a duplicate", () => {
    const all: RequestFacts = { ...clear, draining: true, paused: true, taskIdError: 'bad id', cpuOnly: true, asksGpu: true, owner: { message: 'busy' }, fitError: 'too big', held: true, refusedResultWaiting: true };
    const order: (keyof RequestFacts)[] = ['draining', 'paused', 'taskIdError', 'cpuOnly', 'owner', 'fitError', 'held', 'refusedResultWaiting'];
    const kinds: string[] = [];
    let facts = all;
    for (const field of order) {
      kinds.push(refuseRequest(facts)!.kind);
      facts = { ...facts, [field]: field === 'taskIdError' ? null : field === 'owner' || field === 'fitError' ? null : false };
    }
    expect(kinds).toEqual(['draining', 'paused', 'invalid_task_id', 'cpu_only', 'owner', 'does_not_fit', 'duplicate', 'duplicate']);
    expect(refuseRequest(facts)).toBeNull();
  });
});

describe('admission rules once the zip is read', () => {
  it('admits a task that fits the disk, the store and the quota while an executor runs', () => {
    expect(refuseContent(fits)).toBeNull();
  });

  it.each<[string, Partial<ContentFacts>, string, string | RegExp]>([
    ['a zip that is not a task', { zip: { error: 'the zip has no main.py or run.sh' } }, 'invalid_zip', 'the zip has no main.py or run.sh'],
    ['a task whose hivemind.json names an image the node does not offer', { imageError: 'hivemind.json asks for the image "gpu"; this node offers default (TASK_IMAGES)' }, 'image', 'hivemind.json asks for the image "gpu"; this node offers default (TASK_IMAGES)'],
    ['a task bigger than MAX_DISK_GB', { maxDiskBytes: 5 * MB, maxDiskGb: 0.005 }, 'disk', /needs 0\.01 GB of disk; this node gives tasks at most 0\.005 GB \(MAX_DISK_GB\)/],
    ['a task bigger than the free disk', { freeBytes: 11 * MB }, 'disk', 'not enough free disk: the task needs 12 MB, 11 MB are free under WORK_DIR'],
    ['a zip the task store cannot hold', { storeError: 'the task zip is 2097152 bytes; this node\'s task store holds at most 1048576 bytes' }, 'task_store', /task store holds at most/],
    ['a task that unpacks past the workspace quota', { quotaBytes: 5 * MB }, 'quota', "the task unpacks to 10 MB; this node's workspace quota is 5 MB (WORKSPACE_QUOTA_MB)"],
    ['a node low on disk', { lowDisk: 'the node is low on disk: 90 MB free' }, 'low_disk', 'the node is low on disk: 90 MB free; try again later'],
    ['a node with no executor', { hasExecutor: false }, 'no_executor', 'no executor is running on this node; try again later'],
  ])('refuses %s', (_what, change, kind, message) => {
    const r = refuseContent({ ...fits, ...change });
    expect(r?.kind).toBe(kind);
    expect(r?.message).toMatch(message);
  });

  it('counts the zip and what it unpacks to against the disk, exactly at the limit too', () => {
    expect(refuseContent({ ...fits, freeBytes: 12 * MB })).toBeNull();
    expect(refuseContent({ ...fits, freeBytes: 12 * MB - 1 })?.kind).toBe('disk');
    expect(refuseContent({ ...fits, quotaBytes: 10 * MB })).toBeNull();
  });

  it('reports lasting faults (zip, size) before passing ones (low disk, no executor)', () => {
    const worst: ContentFacts = { ...fits, zip: { error: 'not a zip' }, freeBytes: 0, storeError: 'too big', quotaBytes: 0, lowDisk: 'low', hasExecutor: false };
    expect(refuseContent(worst)?.kind).toBe('invalid_zip');
    expect(refuseContent({ ...worst, zip: fits.zip, imageError: 'no such image' })?.kind).toBe('image');
    expect(refuseContent({ ...worst, zip: fits.zip })?.kind).toBe('disk');
    expect(refuseContent({ ...worst, zip: fits.zip, freeBytes: fits.freeBytes })?.kind).toBe('task_store');
    expect(refuseContent({ ...worst, zip: fits.zip, freeBytes: fits.freeBytes, storeError: null })?.kind).toBe('quota');
    expect(refuseContent({ ...fits, lowDisk: 'low', hasExecutor: false })?.kind).toBe('low_disk');
  });
});
