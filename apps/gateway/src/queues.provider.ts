import { Provider } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { openQueue, QueueName } from '@hivemind/shared/queue/queues';
import { RedisKeys } from '@hivemind/shared/queue/redis-keys';

export const TASKS_QUEUE = Symbol('TASKS_QUEUE');

export const tasksQueueProvider: Provider = {
  provide: TASKS_QUEUE,
  inject: [REDIS, RedisKeys, LOGGER],
  useFactory: (redis: Redis, keys: RedisKeys, logger: Logger) => openQueue(QueueName.Tasks, redis, keys, logger),
};

export const RESULTS_QUEUE = Symbol('RESULTS_QUEUE');

/** The results queue as a Queue (the upload worker consumes it): for its depth and Bull Board. */
export const resultsQueueProvider: Provider = {
  provide: RESULTS_QUEUE,
  inject: [REDIS, RedisKeys, LOGGER],
  useFactory: (redis: Redis, keys: RedisKeys, logger: Logger) => openQueue(QueueName.Results, redis, keys, logger),
};
