import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { WORKER_CONFIG, WorkerConfig } from '@hivemind/shared/config/worker-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { grpcErrorText } from '@hivemind/shared/proto/grpc';
import { NodeCapacity } from '@hivemind/shared/resources/limits';
import { effectiveCapacity, NodeSettingsStore } from '@hivemind/shared/settings/node-settings';
import { MonitorSamples } from '@hivemind/shared/state/monitor-samples';
import { Ticker, within } from '@hivemind/shared/util/ticker';
import { RunningStatusRequest } from '@hivemind/shared/proto/generated/nodepool';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { DockerStatus, NodeStatusService } from '../node-status.service';
import { PoolLinkService } from './pool-link.service';

/** The registered fields of a capacity, to notice a change. */
function capacityKey(n: NodeCapacity): string {
  return `${Math.floor(n.cpuCores)}/${n.memoryGb}/${n.cpuScore}/${n.gpuScore}/${n.gpuMemoryGb}`;
}

/** Status changes within this many ms go to the pool in one ReportStatus. */
const STATUS_COALESCE_MS = 200;

/** How long a heartbeat waits for Redis before it reports what it last knew. */
const REDIS_WAIT_MS = 2000;

/** How the pool answers ReportStatus from a node it does not know (the deployed pool: 未註冊). */
const NOT_REGISTERED = /not registered|未註冊/i;

/** ReportStatus answered that the pool does not know the node. */
class NotRegisteredError extends Error {}

/** Whether the pool may dispatch to a node in this status (Idle, or running with room for more). */
export function takesWork(status: string): boolean {
  return status === 'Idle' || status.startsWith('Running');
}

/**
 * Keeps the node known to the pool: RegisterWorkerNode every REGISTER_INTERVAL (the
 * pool takes it as a heartbeat too), each followed at once by ReportStatus (the pool
 * resets the node to Idle when it registers); ReportStatus every HEARTBEAT_INTERVAL and
 * at once when the status changes, registering again at once when the pool answers
 * that it does not know the node; node-wide TaskUsage every NODE_USAGE_INTERVAL, and
 * the balance every BALANCE_INTERVAL.
 *
 * While the node takes no work (Paused, Busy (owner), Closed, Low disk, Draining,
 * Unavailable) the periodic registration is left out: each would set the node Idle in
 * the pool until the ReportStatus after it lands, a window in which the pool dispatches
 * to a node that refuses. ReportStatus keeps it known meanwhile; a changed capacity, or
 * a pool that no longer knows the node, still registers at once.
 */
@Injectable()
export class HeartbeatService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly tickers: Ticker[];
  private readonly statusTicker: Ticker;
  private lastStatus: string | null = null;
  private lastHeld = 0;
  private lastDocker: DockerStatus = 'unavailable';
  /** What the last RegisterWorkerNode said of capacity; a change re-registers at once. */
  private registered = '';
  private kickTimer: NodeJS.Timeout | null = null;
  private readonly registerTicker: Ticker;
  /** Counts statusChanged() calls, to notice a change while a registration is under way. */
  private statusVersion = 0;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly settings: NodeSettingsStore,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly samples: MonitorSamples,
    private readonly pool: PoolLinkService,
    private readonly nodeStatus: NodeStatusService,
    private readonly metrics: GatewayMetrics,
  ) {
    const onError = (name: string, err: unknown) => this.logger.warn({ job: name, err: grpcErrorText(err) }, 'heartbeat job failed');
    this.statusTicker = new Ticker('report-status', config.HEARTBEAT_INTERVAL * 1000, () => this.reportStatus(), onError);
    this.registerTicker = new Ticker('register', config.REGISTER_INTERVAL * 1000, () => this.registerTick(), onError);
    this.tickers = [
      this.registerTicker,
      this.statusTicker,
      new Ticker('node-usage', config.NODE_USAGE_INTERVAL * 1000, () => this.nodeUsage(), onError),
      new Ticker('balance', config.BALANCE_INTERVAL * 1000, () => this.fetchBalance(), onError),
    ];
  }

  onApplicationBootstrap(): void {
    for (const t of this.tickers) t.start();
  }

  /** First step of shutdown: tell the pool we are draining, so it sends no more work. */
  async beforeApplicationShutdown(): Promise<void> {
    this.nodeStatus.draining = true;
    await this.reportStatus().catch((err) => this.logger.warn({ err: grpcErrorText(err) }, 'could not report Draining'));
  }

  onApplicationShutdown(): void {
    if (this.kickTimer) clearTimeout(this.kickTimer);
    for (const t of this.tickers) t.stop();
  }

  /** Sends ReportStatus now (the node's state changed). */
  statusChanged(): void {
    this.statusVersion += 1;
    // Coalesced: a busy node accepts and finishes several tasks a second, and the pool
    // needs the new status soon, not one ReportStatus per task.
    if (this.kickTimer) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = null;
      this.statusTicker.kick();
    }, STATUS_COALESCE_MS);
  }

  /** The periodic registration (and a kicked one): skipped while it would only open that window. */
  async registerTick(): Promise<void> {
    if (this.registered) {
      const [report, node] = await Promise.all([
        this.gatherStatus(),
        within(this.settings.capacity(), REDIS_WAIT_MS, effectiveCapacity(this.settings.machine, this.settings.lastKnown())),
      ]);
      if (!takesWork(report.status) && capacityKey(node) === this.registered) {
        this.logger.debug({ status: report.status }, 'not registering again while the node takes no work');
        return;
      }
    }
    await this.register();
  }

  async register(): Promise<void> {
    // Redis may be down: the pool must keep hearing from us all the same.
    const [docker, node] = await Promise.all([
      within(this.nodeStatus.dockerStatus(), REDIS_WAIT_MS, this.lastDocker),
      within(this.settings.capacity(), REDIS_WAIT_MS, effectiveCapacity(this.settings.machine, this.settings.lastKnown())),
    ]);
    this.lastDocker = docker;
    // The pool sets a node with no running task Idle on every registration, whatever it
    // last reported: the real status is gathered first so it follows the registration at
    // once, leaving the pool the shortest possible window to dispatch to a false Idle.
    const version = this.statusVersion;
    const report = await this.gatherStatus();
    const res = await this.pool.call('RegisterWorkerNode', this.pool.client.nodes, this.pool.client.nodes.registerWorkerNode, () => ({
      node_id: this.pool.nodeId,
      hostname: this.config.ADVERTISE_HOST,
      cpu_cores: Math.max(1, Math.floor(node.cpuCores)),
      memory_gb: node.memoryGb,
      cpu_score: node.cpuScore,
      gpu_score: node.gpuScore,
      gpu_memory_gb: node.gpuMemoryGb,
      location: this.config.LOCATION,
      port: this.config.advertisePort,
      gpu_name: node.gpuName ?? '',
      docker_status: docker,
    }));
    if (!res.success) throw new Error(`RegisterWorkerNode refused: ${res.message}`);
    this.registered = capacityKey(node);
    this.pool.lastHeartbeatOk = Date.now();
    this.metrics.poolLastHeartbeat.set(this.pool.lastHeartbeatOk / 1000);
    this.metrics.poolRegistrations.inc();
    this.logger.debug({ docker }, 'registered with the node pool');
    await this.sendStatus(report);
    // The state changed while we registered: what we just sent may be stale.
    if (this.statusVersion !== version) this.statusChanged();
  }

  async reportStatus(): Promise<void> {
    const report = await this.gatherStatus();
    // The owner changed the settings: tell the pool the new capacity now, not in 30 s.
    if (this.registered && capacityKey(effectiveCapacity(this.settings.machine, this.settings.lastKnown())) !== this.registered) {
      this.registerTicker.kick();
    }
    try {
      await this.sendStatus(report);
    } catch (err) {
      // The pool forgot the node (it restarted, or we were silent too long): register
      // again now, not at the next registration tick; the registration reports the status.
      if (err instanceof NotRegisteredError) {
        // (At boot the first registration may simply not have landed yet.)
        const level = this.registered ? 'info' : 'debug';
        this.logger[level]({ message: err.message }, 'the Node Pool does not know this node; registering again');
        this.registered = '';
        this.registerTicker.kick();
      }
      throw err;
    }
  }

  /** The ReportStatus the node would send now. */
  private async gatherStatus(): Promise<RunningStatusRequest> {
    // With Redis unreachable nothing can be admitted: say Unavailable, with what we last knew.
    const [{ status, held }, sample, docker] = await Promise.all([
      within(this.nodeStatus.status(), REDIS_WAIT_MS, { status: 'Unavailable', held: this.lastHeld }),
      within(this.samples.latest(), REDIS_WAIT_MS, null),
      within(this.nodeStatus.dockerStatus(), REDIS_WAIT_MS, this.lastDocker),
    ]);
    this.lastHeld = held;
    this.lastDocker = docker;
    // In CPU-only mode the node has no GPU as far as the pool is concerned.
    const gpu = this.config.CPU_ONLY ? undefined : sample?.gpus[0];
    return {
      node_id: this.pool.nodeId,
      status,
      cpu_usage: sample?.cpuPercent ?? 0,
      memory_usage: sample?.memoryPercent ?? 0,
      gpu_usage: gpu?.utilizationPercent ?? 0,
      gpu_memory_usage: gpu && gpu.memoryTotalMb > 0 ? (100 * gpu.memoryUsedMb) / gpu.memoryTotalMb : 0,
      docker_status: docker,
      running_tasks: held,
    };
  }

  private async sendStatus(report: RunningStatusRequest): Promise<void> {
    const res = await this.pool.call('ReportStatus', this.pool.client.nodes, this.pool.client.nodes.reportStatus, () => report);
    if (!res.success) {
      if (NOT_REGISTERED.test(res.message)) throw new NotRegisteredError(`ReportStatus refused: ${res.message}`);
      throw new Error(`ReportStatus refused: ${res.message}`);
    }
    this.pool.lastHeartbeatOk = Date.now();
    this.metrics.poolLastHeartbeat.set(this.pool.lastHeartbeatOk / 1000);
    if (report.status !== this.lastStatus) this.logger.info({ status: report.status }, 'node status');
    this.lastStatus = report.status;
  }

  async nodeUsage(): Promise<void> {
    const sample = await this.samples.latest();
    if (!sample) return;
    const gpu = this.config.CPU_ONLY ? undefined : sample.gpus[0];
    // task_id "0" with the node id in `token`: the deployed pool records node-wide usage.
    await this.pool.call('TaskUsage', this.pool.client.workers, this.pool.client.workers.taskUsage, () => ({
      task_id: '0',
      cpu_usage: sample.cpuPercent,
      memory_usage: sample.memoryPercent,
      gpu_usage: gpu?.utilizationPercent ?? 0,
      gpu_memory_usage: gpu && gpu.memoryTotalMb > 0 ? (100 * gpu.memoryUsedMb) / gpu.memoryTotalMb : 0,
      token: this.pool.nodeId,
    }));
  }

  async fetchBalance(): Promise<void> {
    const res = await this.pool.call('GetBalance', this.pool.client.users, this.pool.client.users.getBalance, (token) => ({
      username: this.pool.nodeId,
      token,
    }));
    if (res.success) {
      if (this.pool.balance !== res.balance) this.logger.info({ balance: res.balance }, 'CPT balance');
      this.pool.balance = res.balance;
    }
  }
}
