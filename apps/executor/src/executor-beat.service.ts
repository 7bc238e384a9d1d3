import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { ControlChannel, ControlSubscription } from '@hivemind/shared/state/control-channel';
import { ExecutorBeat, Executors } from '@hivemind/shared/state/executors';
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
  private subscription: ControlSubscription | null = null;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly executors: Executors,
    private readonly control: ControlChannel,
    private readonly runtimes: RuntimeService,
    private readonly processor: TaskProcessor,
    private readonly runner: TaskPipeline,
  ) {
    this.ticker = new Ticker('executor-beat', BEAT_MS, () => this.beat(), (_n, err) =>
      this.logger.warn({ err: errorMessage(err) }, 'executor beat failed'),
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    this.ticker.start();
    // Tell the gateway at once when this executor can take tasks.
    void this.processor.whenReady.then(() => this.ticker.kick());
    this.subscription = await this.control.subscribe(
      'hivemind-executor-control',
      (msg) => {
        if (msg.type === 'stop' && this.runner.requestStop(msg.taskId)) this.logger.info({ taskId: msg.taskId }, 'stopping task on request');
      },
      () => this.logger.warn('ignored a malformed control message'),
    );
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
    await this.executors.beat(beat);
  }

  async onApplicationShutdown(): Promise<void> {
    this.ticker.stop();
    this.subscription?.close();
    await this.executors.remove(this.processor.executorId).catch(() => undefined);
  }
}
