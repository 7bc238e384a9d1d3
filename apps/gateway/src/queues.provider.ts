import { Inject, Injectable, OnApplicationShutdown, Provider } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { openQueue, QueueName } from '@hivemind/shared/queue/queues';

export const TASKS_QUEUE = Symbol('TASKS_QUEUE');

export const tasksQueueProvider: Provider = {
  provide: TASKS_QUEUE,
  inject: [WORKER_CONFIG, LOGGER],
  useFactory: (config: WorkerConfig, logger: Logger) => openQueue(QueueName.Tasks, config, 'gateway', logger),
};

export const RESULTS_QUEUE = Symbol('RESULTS_QUEUE');

/** The results queue as a Queue (the upload worker consumes it): for its depth and Bull Board. */
export const resultsQueueProvider: Provider = {
  provide: RESULTS_QUEUE,
  inject: [WORKER_CONFIG, LOGGER],
  useFactory: (config: WorkerConfig, logger: Logger) => openQueue(QueueName.Results, config, 'gateway', logger),
};

/** Closes the gateway's queues (and their connections) when it stops. */
@Injectable()
export class QueuesCloser implements OnApplicationShutdown {
  constructor(
    @Inject(TASKS_QUEUE) private readonly tasks: Queue,
    @Inject(RESULTS_QUEUE) private readonly results: Queue,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.tasks.close(), this.results.close()]);
  }
}
