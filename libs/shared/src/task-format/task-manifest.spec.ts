import { makeZip } from '../../../../test/support/zips';
import { imageForName, MANIFEST_MAX_BYTES, parseImageNames, parseManifest } from './task-manifest';
import { TaskFormatError } from './task-format.error';
import { inspectZip } from './zip-inspect';

const limits = { maxEntries: 100, maxUncompressedBytes: 1024 * 1024 };

function problem(content: string | Buffer): string {
  try {
    parseManifest(Buffer.isBuffer(content) ? content : Buffer.from(content));
  } catch (err) {
    expect(err).toBeInstanceOf(TaskFormatError);
    expect((err as TaskFormatError).code).toBe('BAD_MANIFEST');
    return (err as Error).message;
  }
  throw new Error('the manifest was accepted');
}

describe('parseManifest', () => {
  it('reads the image name', () => {
    expect(parseManifest(Buffer.from('{"image": "ml"}'))).toEqual({ image: 'ml' });
    expect(parseManifest(Buffer.from('\n  { "image" : "default" }\n'))).toEqual({ image: 'default' });
  });

  it.each([
    ['not JSON', '{image: ml}', /^hivemind\.json: is not valid JSON \(/],
    ['an array', '["ml"]', /^hivemind\.json: must be a JSON object, such as \{"image": "ml"\}$/],
    ['a string', '"ml"', /^hivemind\.json: must be a JSON object/],
    ['null', 'null', /^hivemind\.json: must be a JSON object/],
    ['an unknown key', '{"image": "ml", "gpu": true}', /^hivemind\.json: unknown key "gpu"; the manifest knows only "image"$/],
    ['two unknown keys', '{"img": "ml", "cmd": "x"}', /^hivemind\.json: unknown keys "img", "cmd"; /],
    ['no image', '{}', /^hivemind\.json: names no "image"/],
    ['a number as image', '{"image": 3}', /^hivemind\.json: "image" must be a string, got 3$/],
    ['an upper-case name', '{"image": "ML"}', /^hivemind\.json: "image" is "ML"; an image name has lower-case letters/],
    ['an image reference instead of a name', '{"image": "hivemind/task-ml:latest"}', /^hivemind\.json: "image" is "hivemind\/task-ml:latest"; an image name has/],
    ['an empty name', '{"image": ""}', /^hivemind\.json: "image" is ""; /],
  ])('refuses %s, naming the file and the problem', (_what, content, message) => {
    expect(problem(content)).toMatch(message);
  });

  it('refuses text that is not UTF-8 and a manifest past its size', () => {
    expect(problem(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))).toBe('hivemind.json: is not UTF-8 text');
    expect(problem(`{"image": "ml"}${' '.repeat(MANIFEST_MAX_BYTES)}`)).toMatch(/^hivemind\.json: 4111 bytes; a manifest may hold at most 4096$/);
  });
});

describe('parseImageNames (TASK_IMAGES)', () => {
  it('maps names to images', () => {
    expect(parseImageNames('ml=hivemind/task-ml:latest, gpu = registry.example:5000/ml-gpu:2 ,')).toEqual({
      ml: 'hivemind/task-ml:latest',
      gpu: 'registry.example:5000/ml-gpu:2',
    });
    expect(parseImageNames('')).toEqual({});
  });

  it.each([
    ['hivemind/task-ml:latest', /"hivemind\/task-ml:latest" is not name=image/],
    ['ML=x:1', /the name "ML" \(in "ML=x:1"\) must have lower-case letters/],
    ['ml=', /"ml=" names no image/],
    ['ml=a:1,ml=b:1', /the name "ml" is given twice/],
  ])('refuses %s', (value, message) => {
    expect(() => parseImageNames(value)).toThrow(message);
  });
});

describe('imageForName', () => {
  const images = { default: 'hivemind/task-runtime:latest', ml: 'hivemind/task-ml:latest' };
  it('finds the image of a name the node offers, and says which names it offers otherwise', () => {
    expect(imageForName('ml', images)).toEqual({ image: 'hivemind/task-ml:latest' });
    expect(imageForName('gpu', images)).toEqual({ error: 'hivemind.json asks for the image "gpu"; this node offers default, ml (TASK_IMAGES)' });
    expect(imageForName('constructor', images)).toHaveProperty('error');
  });
});

describe('inspectZip and the manifest', () => {
  it('reads the manifest beside the entry point, at the top or in the single top folder', async () => {
    const top = await inspectZip(await makeZip([{ name: 'main.py', content: '' }, { name: 'hivemind.json', content: '{"image":"ml"}' }]), limits);
    expect(top.manifest).toEqual({ image: 'ml' });
    const nested = await inspectZip(await makeZip([{ name: 't/main.py', content: '' }, { name: 't/hivemind.json', content: '{"image":"ml"}' }]), limits);
    expect(nested.manifest).toEqual({ image: 'ml' });
  });

  it('has no manifest when the task root holds none (one deeper down does not count)', async () => {
    const s = await inspectZip(await makeZip([{ name: 'main.py', content: '' }, { name: 'data/hivemind.json', content: 'not json' }]), limits);
    expect(s.manifest).toBeNull();
  });

  it('refuses a zip whose manifest is bad, or too large to read', async () => {
    await expect(inspectZip(await makeZip([{ name: 'run.py', content: '' }, { name: 'hivemind.json', content: '{"image":"ml","x":1}' }]), limits)).rejects.toThrow(
      'hivemind.json: unknown key "x"; the manifest knows only "image"',
    );
    await expect(inspectZip(await makeZip([{ name: 'run.py', content: '' }, { name: 'hivemind.json', content: 'x'.repeat(5000) }]), limits)).rejects.toThrow(
      'hivemind.json: 5000 bytes; a manifest may hold at most 4096',
    );
  });
});
