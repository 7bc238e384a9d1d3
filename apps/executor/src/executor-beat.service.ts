import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { REDIS } from '@hivemind/shared/nest/worker-core.module';
import { ControlMessage, ExecutorBeat, RedisKeys } from '@hivemind/shared/queue/redis-keys';
import { Ticker } from '@hivemind/shared/util/ticker';
import { RuntimeService } from './runtime/runtime.service';
import { TaskProcessor } from './task.processor';
import { TaskPipeline } from './pipeline/task-pipeline';
import { errorMessage } from '@hivemind/shared/util/errors';

const BEAT_MS = 5000;

/**
 * Tells the gateway this executor is alive and what it can run (every 5 s), and
 * listens for stop requests on the control channel.
 */
@Injectable()
export class ExecutorBeatService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly ticker: Ticker;
  private subscriber: Redis;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly runtimes: RuntimeService,
    private readonly processor: TaskProcessor,
    private readonly runner: TaskPipeline,
  ) {
    this.ticker = new Ticker('executor-beat', BEAT_MS, () => this.beat(), (_n, err) =>
      this.logger.warn({ err: errorMessage(err) }, 'executor beat failed'),
    );
    this.subscriber = redis.duplicate({ connectionName: 'hivemind-executor-control' });
  }

  async onApplicationBootstrap(): Promise<void> {
    this.ticker.start();
    // Tell the gateway at once when this executor can take tasks.
    void this.processor.whenReady.then(() => this.ticker.kick());
    this.subscriber.on('message', (_channel: string, raw: string) => {
      try {
        const msg = JSON.parse(raw) as ControlMessage;
        if (msg.type === 'stop' && this.runner.requestStop(msg.taskId)) {
          this.logger.info({ taskId: msg.taskId }, 'stopping task on request');
        }
      } catch {
        this.logger.warn('ignored a malformed control message');
      }
    });
    await this.subscriber.subscribe(this.keys.control);
  }

  private async beat(): Promise<void> {
    const beat: ExecutorBeat = {
      executorId: this.processor.executorId,
      runtime: this.processor.ready && this.runtimes.runtime ? this.runtimes.runtime.name : 'none',
      docker: this.runtimes.docker,
      running: this.runner.runningCount,
      concurrency: this.config.executorConcurrency,
      seenAt: Date.now(),
      problem: this.processor.ready ? null : this.runtimes.problem,
    };
    await this.redis.hset(this.keys.executors, beat.executorId, JSON.stringify(beat));
  }

  async onApplicationShutdown(): Promise<void> {
    this.ticker.stop();
    this.subscriber.disconnect();
    await this.redis.hdel(this.keys.executors, this.processor.executorId).catch(() => undefined);
  }
}
