import { promises as fs } from 'node:fs';
import { Inject, Injectable } from '@nestjs/common';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { ResultJob } from '@hivemind/shared/queue/queues';
import { Outcome } from '@hivemind/shared/task-format/outcome';
import { WorkDir } from '@hivemind/shared/work-dir/work-dir';
import { RuntimeService } from '../runtime/runtime.service';
import { writeLogsOnly } from './pack-result.step';
import { PublishStep } from './publish.step';

/**
 * The last resort: a result with no workspace that says why the task could not
 * finish, when its pipeline itself failed (e.g. a full disk) or its job was lost.
 */
@Injectable()
export class FallbackResults {
  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly workDir: WorkDir,
    private readonly runtimes: RuntimeService,
    private readonly publish: PublishStep,
  ) {}

  async failureFor(taskId: string, outcome: Outcome, entryPoint = 'unknown'): Promise<ResultJob> {
    const resultFile = this.workDir.result(taskId);
    const now = new Date();
    const base = { taskId, code: outcome.code, status: 'Failed' as const, exitCode: null, receivedAt: now.getTime(), startedAt: now.getTime(), finishedAt: now.getTime() };
    if (await fs.stat(resultFile).then((st) => st.isFile(), () => false)) {
      // The real result was written before things went wrong: send that, not a stand-in.
      await this.publish.putResult(taskId);
      return { ...base, reason: `${outcome.reason} (its result was recovered)` };
    }
    await writeLogsOnly(
      {
        record: { taskId, status: 'Failed', reason: outcome.reason, exitCode: null, startedAt: now, finishedAt: now, nodeId: this.config.NODE_ID || 'unknown', entryPoint, runtime: this.runtimes.runtime?.name ?? 'none' },
        logFile: this.workDir.log(taskId),
        outFile: resultFile,
      },
      this.config.workDir,
    );
    await this.publish.putResult(taskId);
    return { ...base, reason: outcome.reason };
  }
}
