import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { Outcome, outcomes } from '@hivemind/shared/task-format/outcome';
import { ExecutionRecord, ResultBudgetError, writeResultZip } from '@hivemind/shared/task-format/result-zip';
import { TASK_STORE, TaskStore } from '@hivemind/shared/state/task-store';
import { errorMessage } from '@hivemind/shared/util/errors';
import { removeTree } from '../workspace/remove-tree';
import { TaskCancelled, withBudget } from './cancellation';
import { PACKAGES_DIR } from './install-requirements.step';

export interface PackInput {
  taskId: string;
  workspace: string;
  logFile: string;
  outFile: string;
  record: ExecutionRecord;
  outcome: Outcome;
  /** The task's cancellation after its run (a stop or drain while packing). */
  signal: AbortSignal;
}

/**
 * Packs the result zip: the workspace as the task left it, bounded by the largest
 * upload (MAX_MESSAGE_MB, the task store's limit), by RESULT_MAX_READ_MB read from
 * the workspace (a sparse file is never read in full), by PACK_TIMEOUT and by the
 * task's cancellation. A result that cannot be packed within that holds the logs
 * only, and its outcome says why.
 */
@Injectable()
export class PackResultStep {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(TASK_STORE) private readonly store: TaskStore,
  ) {}

  /** The largest result zip one upload can carry (room left for the rest of the message). */
  get maxZipBytes(): number {
    const m = this.config.maxMessageBytes;
    return Math.min(m - Math.min(1024 * 1024, m / 16), this.store.maxBytes);
  }

  /** Writes the result zip; returns the task's final outcome (changed when the workspace had to be left out). */
  async run(input: PackInput): Promise<Outcome> {
    const c = this.config;
    await removeTree(path.join(input.workspace, PACKAGES_DIR)).catch(() => undefined);
    await fs.mkdir(input.workspace, { recursive: true });
    const budget = withBudget(input.signal, c.PACK_TIMEOUT * 1000, () =>
      outcomes.stepOverBudget('pack', `packing the result took longer than ${c.PACK_TIMEOUT} s (PACK_TIMEOUT)`),
    );
    let final: Outcome | null = null;
    try {
      await writeResultZip({
        workspace: input.workspace,
        record: input.record,
        logFile: input.logFile,
        outFile: input.outFile,
        maxZipBytes: this.maxZipBytes,
        maxReadBytes: c.RESULT_MAX_READ_MB * 1024 * 1024,
        signal: budget.signal,
      });
      return input.outcome;
    } catch (err) {
      if (err instanceof ResultBudgetError) {
        const setting = err.kind === 'zip_too_large' ? 'MAX_MESSAGE_MB' : 'RESULT_MAX_READ_MB';
        final = outcomes.resultTooLarge(`${input.outcome.reason}; ${err.message} (${setting}); only the logs are sent`);
      } else if (err instanceof TaskCancelled) {
        const o = err.outcome;
        const when = o.code === 'stopped' ? ' while its result was packed' : '';
        final = { ...o, status: o.status === 'Success' ? 'Failed' : o.status, reason: `${input.outcome.reason}; ${o.reason}${when}; only the logs are sent` };
      } else {
        final = outcomes.resultUnpackable(`${errorMessage(err)}; only the logs are sent`);
        final = { ...final, reason: `${input.outcome.reason}; ${final.reason}` };
      }
    } finally {
      budget.done();
    }
    this.logger.warn({ taskId: input.taskId, why: final.reason }, 'result without the workspace');
    await writeLogsOnly({ ...input, record: { ...input.record, status: final.status, reason: final.reason } }, c.workDir);
    return final;
  }
}

/** A result zip with execution_log.txt and task_logs.txt only (both small and bounded). */
export async function writeLogsOnly(input: { record: ExecutionRecord; logFile: string; outFile: string }, workDir: string): Promise<void> {
  await fs.mkdir(workDir, { recursive: true });
  const empty = await fs.mkdtemp(path.join(workDir, 'empty-'));
  try {
    await writeResultZip({ workspace: empty, record: input.record, logFile: input.logFile, outFile: input.outFile });
  } finally {
    await fs.rm(empty, { recursive: true, force: true });
  }
}
