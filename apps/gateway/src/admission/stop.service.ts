import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { StopTaskExecutionResponse } from '@hivemind/shared/proto/generated/nodepool';
import { ControlChannel } from '@hivemind/shared/state/control-channel';
import { ResourceLedger } from '@hivemind/shared/state/ledger';
import { checkTaskId } from '@hivemind/shared/task-format/task-id';

/**
 * StopTaskExecution: flags the task (so an executor that has not started it yet
 * stops it at once) and tells every executor; the one running it stops it.
 */
@Injectable()
export class StopService {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly ledger: ResourceLedger,
    private readonly control: ControlChannel,
  ) {}

  async stop(taskId: string, peer: string): Promise<StopTaskExecutionResponse> {
    const idError = checkTaskId(taskId);
    if (idError) return { success: false, message: idError };
    if (!(await this.ledger.holds(taskId))) {
      return { success: false, message: `task ${taskId} is not running on this node` };
    }
    await this.control.requestStop(taskId);
    this.logger.info({ taskId, peer }, 'stop requested');
    return { success: true, message: `stopping task ${taskId}; its result follows` };
  }
}
