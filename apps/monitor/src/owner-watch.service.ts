import * as os from 'node:os';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { NodeEvent } from '@hivemind/shared/events/node-events';
import { NodeEvents } from '@hivemind/shared/events/node-events.emitter';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { OwnerBusyDetector } from '@hivemind/shared/owner/owner-busy';
import { OwnerState, tasksCpuPercent } from '@hivemind/shared/owner/owner-state';
import { scheduleStatus } from '@hivemind/shared/owner/work-schedule';
import { MonitorSamples } from '@hivemind/shared/state/monitor-samples';
import { OwnerStateRepository } from '@hivemind/shared/state/owner-state';
import { RunningTasks } from '@hivemind/shared/state/running-tasks';
import { Ticker } from '@hivemind/shared/util/ticker';
import { errorMessage } from '@hivemind/shared/util/errors';

/**
 * Watches the owner: feeds each new host sample, minus what the node's tasks use, to
 * the busy-owner state machine, and publishes the owner state (busy, working hours,
 * tasks paused for the owner) to Redis every second, with an expiry so that a stopped
 * monitor never leaves the node marked busy. A change of the state (busy or not, since
 * when, frozen tasks, working hours; not the CPU figures in it alone) is also emitted as an event.
 */
@Injectable()
export class OwnerWatchService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly ticker: Ticker;
  private readonly detector: OwnerBusyDetector;
  private lastSampleAt = 0;
  private lastBusy = false;
  private lastEmitted = '';
  private readonly cores = os.cpus().length || 1;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly samples: MonitorSamples,
    private readonly running: RunningTasks,
    private readonly owner: OwnerStateRepository,
    private readonly events: NodeEvents,
  ) {
    this.detector = new OwnerBusyDetector({
      thresholdPercent: config.OWNER_BUSY_CPU_PERCENT,
      busyAfterMs: config.OWNER_BUSY_AFTER * 1000,
      idleAfterMs: config.OWNER_IDLE_AFTER * 1000,
    });
    this.ticker = new Ticker('owner-watch', 1000, async () => void (await this.tick()), (_n, err) => this.logger.warn({ err: errorMessage(err) }, 'owner watch failed'));
  }

  onApplicationBootstrap(): void {
    this.ticker.start();
  }

  onApplicationShutdown(): void {
    this.ticker.stop();
  }

  async tick(): Promise<OwnerState> {
    const sample = await this.samples.latest(Math.max(15_000, 3 * this.config.MONITOR_INTERVAL * 1000));
    if (sample && sample.at > this.lastSampleAt) {
      this.lastSampleAt = sample.at;
      const running = (await this.running.all()).values();
      const s = this.detector.feed({ at: sample.at, hostCpuPercent: sample.cpuPercent, tasksCpuPercent: tasksCpuPercent(running, this.cores, sample.at) });
      if (s.busy !== this.lastBusy) this.logger.info({ busy: s.busy, ownerCpuPercent: s.ownerCpuPercent, reason: s.reason }, s.busy ? 'owner busy: taking no new tasks' : 'owner idle again');
      this.lastBusy = s.busy;
    }
    const frozen = await this.owner.frozenTaskIds();
    const state: OwnerState = { ...this.detector.state, frozenTasks: frozen, scheduleOpen: scheduleStatus(this.config.workSchedule, new Date()).open };
    await this.owner.publish(state, Math.max(10_000, 3 * this.config.MONITOR_INTERVAL * 1000));
    const key = JSON.stringify([state.busy, state.since, state.frozenTasks, state.scheduleOpen]);
    if (key !== this.lastEmitted) {
      this.lastEmitted = key;
      this.events.emit(NodeEvent.OwnerChanged, { at: Date.now(), state });
    }
    return state;
  }
}
