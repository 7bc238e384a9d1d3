import { Provider } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { QueueName } from '@hivemind/shared/queue/queues';
import { RedisKeys } from '@hivemind/shared/queue/redis-keys';

export const TASKS_QUEUE = Symbol('TASKS_QUEUE');

export const tasksQueueProvider: Provider = {
  provide: TASKS_QUEUE,
  inject: [REDIS, RedisKeys, LOGGER],
  useFactory: (redis: Redis, keys: RedisKeys, logger: Logger) => {
    const q = new Queue(QueueName.Tasks, { connection: redis, prefix: keys.bullPrefix });
    q.on('error', (err) => logger.warn({ err: err.message, queue: QueueName.Tasks }, 'queue error'));
    return q;
  },
};
