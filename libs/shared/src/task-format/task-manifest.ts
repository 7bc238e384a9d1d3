import { TaskFormatError } from './task-format.error';

/**
 * A task's manifest: an optional JSON file beside its entry point that says which of
 * the node's task images it runs in, e.g. `{"image": "ml"}`. Without one (or with
 * `"image": "default"`) the task runs in the default image.
 */
export const MANIFEST_FILE = 'hivemind.json';
/** A manifest is a few bytes; a larger one is refused unread. */
export const MANIFEST_MAX_BYTES = 4096;
/** The name of TASK_IMAGE among the node's task images. */
export const DEFAULT_IMAGE_NAME = 'default';
/** What an image name may look like (in a manifest and in TASK_IMAGES). */
export const IMAGE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const NAME_RULE = 'lower-case letters, digits, "-" and "_", at most 32 characters';

export interface TaskManifest {
  /** The name of the image the task runs in (a key of TASK_IMAGES, or "default"). */
  image: string;
}

const KEYS = ['image'] as const;

function bad(problem: string): TaskFormatError {
  return new TaskFormatError('BAD_MANIFEST', `${MANIFEST_FILE}: ${problem}`);
}

/** Parses and checks a task's manifest. Throws a TaskFormatError (BAD_MANIFEST) naming the file and the problem. */
export function parseManifest(content: Buffer): TaskManifest {
  if (content.length > MANIFEST_MAX_BYTES) throw bad(`${content.length} bytes; a manifest may hold at most ${MANIFEST_MAX_BYTES}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch {
    throw bad('is not UTF-8 text');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bad(`is not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('must be a JSON object, such as {"image": "ml"}');
  }
  const unknown = Object.keys(value).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length) {
    throw bad(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; the manifest knows only ${KEYS.map((k) => JSON.stringify(k)).join(', ')}`);
  }
  const image = (value as Record<string, unknown>).image;
  if (image === undefined) throw bad('names no "image", such as {"image": "ml"}');
  if (typeof image !== 'string') throw bad(`"image" must be a string, got ${JSON.stringify(image)}`);
  if (!IMAGE_NAME_PATTERN.test(image)) throw bad(`"image" is ${JSON.stringify(image)}; an image name has ${NAME_RULE}`);
  return { image };
}

/**
 * Parses TASK_IMAGES: `name=image` pairs, comma separated, e.g.
 * `ml=hivemind/task-ml:latest`. Throws an Error saying what is wrong (the caller adds
 * the variable's name).
 */
export function parseImageNames(value: string): Record<string, string> {
  const names: Record<string, string> = {};
  for (const raw of value.split(',')) {
    const pair = raw.trim();
    if (!pair) continue;
    const eq = pair.indexOf('=');
    if (eq < 0) throw new Error(`"${pair}" is not name=image`);
    const name = pair.slice(0, eq).trim();
    const image = pair.slice(eq + 1).trim();
    if (!IMAGE_NAME_PATTERN.test(name)) throw new Error(`the name "${name}" (in "${pair}") must have ${NAME_RULE}`);
    if (!image || /\s/.test(image)) throw new Error(`"${pair}" names no image (or one with spaces)`);
    if (name in names) throw new Error(`the name "${name}" is given twice`);
    names[name] = image;
  }
  return names;
}

/**
 * The image a manifest's name stands for on this node, or why the node cannot run the
 * task. `images` maps every name the node offers (default included) to its image.
 */
export function imageForName(name: string, images: Readonly<Record<string, string>>): { image: string } | { error: string } {
  if (Object.prototype.hasOwnProperty.call(images, name)) return { image: images[name] };
  const offered = Object.keys(images).sort().join(', ');
  return { error: `${MANIFEST_FILE} asks for the image "${name}"; this node offers ${offered} (TASK_IMAGES)` };
}
