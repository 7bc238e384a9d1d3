import { promises as fs } from 'node:fs';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { NodeEvent } from '@hivemind/shared/events/node-events';
import { NodeEvents } from '@hivemind/shared/events/node-events.emitter';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { HostSample, MonitorSamples } from '@hivemind/shared/state/monitor-samples';
import { Ticker } from '@hivemind/shared/util/ticker';
import { HostProbe, NetCounters } from './host-probe.adapter';
import { errorMessage } from '@hivemind/shared/util/errors';

/**
 * Samples the host every MONITOR_INTERVAL and publishes the latest sample and a
 * bounded history (MONITOR_HISTORY samples) to Redis for the gateway, and emits each
 * sample as an event (the dashboard's live charts).
 */
@Injectable()
export class SamplerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly ticker: Ticker;
  private lastNet: NetCounters | null = null;
  samples = 0;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly published: MonitorSamples,
    private readonly probe: HostProbe,
    private readonly events: NodeEvents,
  ) {
    this.ticker = new Ticker('sample', config.MONITOR_INTERVAL * 1000, () => this.sampleAndPublish(), (_n, err) =>
      this.logger.warn({ err: errorMessage(err) }, 'host sample failed'),
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    await fs.mkdir(this.config.workDir, { recursive: true });
    const { gpus } = await this.probe.init(this.config.CPU_ONLY);
    this.logger.info({ gpus }, 'host probe ready');
    this.ticker.start();
  }

  onApplicationShutdown(): void {
    this.ticker.stop();
  }

  async sample(): Promise<HostSample> {
    const [cpu, mem, disk, net, gpus] = await Promise.all([
      this.probe.cpuPercent(),
      this.probe.memory(),
      this.probe.disk(this.config.workDir),
      this.probe.net(),
      this.probe.gpus(),
    ]);
    let rxRate = 0;
    let txRate = 0;
    if (net && this.lastNet && net.at > this.lastNet.at) {
      const secs = (net.at - this.lastNet.at) / 1000;
      rxRate = Math.max(0, (net.rx - this.lastNet.rx) / secs);
      txRate = Math.max(0, (net.tx - this.lastNet.tx) / secs);
    }
    this.lastNet = net;
    return {
      at: Date.now(),
      cpuPercent: round(cpu),
      memoryPercent: round((100 * mem.used) / mem.total),
      memoryUsedBytes: mem.used,
      memoryTotalBytes: mem.total,
      diskPercent: round(disk.total ? (100 * (disk.total - disk.free)) / disk.total : 0),
      diskFreeBytes: disk.free,
      diskTotalBytes: disk.total,
      netRxBytesPerSec: Math.round(rxRate),
      netTxBytesPerSec: Math.round(txRate),
      gpus,
    };
  }

  private async sampleAndPublish(): Promise<void> {
    const s = await this.sample();
    this.events.emit(NodeEvent.HostSample, { sample: s });
    await this.published.publish(s, this.config.MONITOR_HISTORY);
    this.samples += 1;
  }
}

const round = (n: number) => Math.round(n * 10) / 10;
