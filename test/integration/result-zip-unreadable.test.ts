import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from '../support/stack';
import { unzip } from '../support/unzip';

/**
 * An executor that is not root cannot read a file its task made unreadable (chmod 000).
 * Packing the result must leave the file out, say so, and finish, not hang. The
 * packer runs in a separate process as an unprivileged user (nobody when the tests run
 * as root), from the build.
 */
describe('packing a result with a file the executor cannot read', () => {
  it('leaves it out, says so in execution_log.txt, and finishes', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-unreadable-'));
    const ws = path.join(dir, 'ws');
    await fs.mkdir(ws);
    await fs.writeFile(path.join(ws, 'ok.txt'), 'fine');
    await fs.writeFile(path.join(ws, 'secret.txt'), 'nope');
    await fs.chmod(path.join(ws, 'secret.txt'), 0o000);
    await fs.chmod(dir, 0o777);
    await fs.chmod(ws, 0o777);
    const out = path.join(dir, 'r.zip');
    const module = path.join(ROOT, 'dist/libs/shared/src/task-format/result-zip.js');
    const script = `
      const { writeResultZip } = require(${JSON.stringify(module)});
      const t = setTimeout(() => { console.error('hung'); process.exit(2); }, 10000);
      const record = { taskId: 't', status: 'Success', reason: 'r', exitCode: 0, startedAt: new Date(), finishedAt: new Date(), nodeId: 'n', entryPoint: 'run.py', runtime: 'docker' };
      writeResultZip({ workspace: ${JSON.stringify(ws)}, record, logFile: '/nonexistent', outFile: ${JSON.stringify(out)} })
        .then(() => { clearTimeout(t); process.exit(0); }, (e) => { console.error(e); process.exit(1); });`;
    const asNobody = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    const [cmd, ...args] = [...asNobody, process.execPath, '-e', script];
    execFileSync(cmd, args, { stdio: 'pipe' });
    const entries = await unzip(await fs.readFile(out));
    expect(entries.get('ok.txt')!.data.toString()).toBe('fine');
    expect(entries.has('secret.txt')).toBe(false);
    expect(entries.get('execution_log.txt')!.data.toString()).toContain('Not packed (unreadable): secret.txt');
    await fs.rm(dir, { recursive: true, force: true });
  });
});
