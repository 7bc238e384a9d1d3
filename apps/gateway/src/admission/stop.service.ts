import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { StopTaskExecutionResponse } from '@hivemind/shared/proto/generated/nodepool';
import { ControlMessage, RedisKeys } from '@hivemind/shared/queue/redis-keys';
import { ResourceLedger } from '@hivemind/shared/resources/ledger';
import { checkTaskId } from '@hivemind/shared/task-format/task-id';

/** How long a stop request waits for a task that has not started yet. */
const STOP_FLAG_TTL_S = 24 * 3600;

/**
 * StopTaskExecution: flags the task (so an executor that has not started it yet
 * stops it at once) and tells every executor; the one running it stops it.
 */
@Injectable()
export class StopService {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly keys: RedisKeys,
    private readonly ledger: ResourceLedger,
  ) {}

  async stop(taskId: string, peer: string): Promise<StopTaskExecutionResponse> {
    const idError = checkTaskId(taskId);
    if (idError) return { success: false, message: idError };
    if (!(await this.ledger.holds(taskId))) {
      return { success: false, message: `task ${taskId} is not running on this node` };
    }
    await this.redis.set(this.keys.stop(taskId), String(Date.now()), 'EX', STOP_FLAG_TTL_S);
    const msg: ControlMessage = { type: 'stop', taskId };
    await this.redis.publish(this.keys.control, JSON.stringify(msg));
    this.logger.info({ taskId, peer }, 'stop requested');
    return { success: true, message: `stopping task ${taskId}; its result follows` };
  }
}
