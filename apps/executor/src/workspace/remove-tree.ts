import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * Removes a workspace. A task may leave folders without write or search permission,
 * which stop a non-root executor's rm; those are opened up first.
 */
export async function removeTree(dir: string): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
    return;
  } catch {
    const openUp = async (d: string): Promise<void> => {
      await fs.chmod(d, 0o700).catch(() => undefined);
      const entries = await fs.readdir(d, { withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isDirectory()) await openUp(path.join(d, e.name));
    };
    await openUp(dir);
    await fs.rm(dir, { recursive: true, force: true });
  }
}
