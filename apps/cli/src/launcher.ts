import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, WriteStream } from 'node:fs';
import * as path from 'node:path';

/**
 * Starts the worker's services (monitor, executor, gateway) as child processes with the
 * environment the CLI built, copies their output to stdout and, when asked, appends it
 * to a log file. When one exits the others are stopped; SIGTERM/SIGINT are passed on,
 * so the executor drains (it may take DRAIN_TIMEOUT plus the stop grace) before the
 * command exits. Resolves with the exit code the command should end with.
 */

export const WORKER_SERVICES = ['monitor', 'executor', 'gateway'] as const;

export function serviceMain(service: string): string {
  // dist/apps/cli/src/launcher.js -> dist/apps/<service>/src/main.js
  return path.resolve(__dirname, '..', '..', service, 'src', 'main.js');
}

export interface LaunchOptions {
  env: Record<string, string>;
  logFile?: string;
  services?: readonly string[];
  out?: NodeJS.WritableStream;
}

export function launchServices(opts: LaunchOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  let file: WriteStream | undefined;
  if (opts.logFile) {
    mkdirSync(path.dirname(path.resolve(opts.logFile)), { recursive: true });
    file = createWriteStream(opts.logFile, { flags: 'a', mode: 0o640 });
  }
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  let firstCode: number | null = null;

  const stopAll = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const c of children.values()) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  };

  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      out.write(`[hivemind-worker] ${signal}: stopping the services (the executor drains first)\n`);
      firstCode ??= 0;
      stopAll('SIGTERM');
    };
    const sigterm = () => onSignal('SIGTERM');
    const sigint = () => onSignal('SIGINT');
    process.on('SIGTERM', sigterm);
    process.on('SIGINT', sigint);

    for (const service of opts.services ?? WORKER_SERVICES) {
      const child = spawn(process.execPath, [serviceMain(service)], { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.set(service, child);
      for (const stream of [child.stdout, child.stderr]) {
        stream?.on('data', (chunk: Buffer) => {
          out.write(chunk);
          file?.write(chunk);
        });
      }
      child.on('exit', (code, signal) => {
        const c = code ?? (signal ? 1 : 0);
        if (!stopping) {
          out.write(`[hivemind-worker] ${service} exited (${signal ?? `code ${code}`}); stopping the others\n`);
          firstCode ??= c === 0 ? 1 : c;
          stopAll('SIGTERM');
        }
        children.delete(service);
        if (children.size === 0) {
          process.off('SIGTERM', sigterm);
          process.off('SIGINT', sigint);
          const done = () => resolve(firstCode ?? c);
          if (file) file.end(done);
          else done();
        }
      });
    }
  });
}
