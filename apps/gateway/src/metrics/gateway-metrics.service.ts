import { Inject, Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { METRICS_REGISTRY } from '@hivemind/shared/metrics/registry';
import { ResultJob } from '@hivemind/shared/queue/queues';
import { HostSample, MonitorSamples } from '@hivemind/shared/state/monitor-samples';
import { RefusedResults } from '@hivemind/shared/state/refused-results';
import { RunningTasks } from '@hivemind/shared/state/running-tasks';
import { RESULTS_QUEUE, TASKS_QUEUE } from '../queues.provider';

/** Why a task was refused, as a small fixed set of label values. */
export type RefusalKind =
  | 'draining'
  | 'paused'
  | 'invalid_task_id'
  | 'does_not_fit'
  | 'duplicate'
  | 'invalid_zip'
  | 'image'
  | 'disk'
  | 'no_executor'
  | 'busy'
  | 'cpu_only'
  | 'owner'
  | 'task_store'
  | 'quota'
  | 'low_disk'
  | 'caller_gave_up'
  | 'store_failed';

/** How a finished task ended, for the tasks_finished counter. */
export function outcomeLabel(r: Pick<ResultJob, 'status' | 'reason' | 'code'>): 'success' | 'failed' | 'stopped' | 'timed_out' {
  if (r.status === 'Success') return 'success';
  if (r.status === 'Stopped') return 'stopped';
  // A result queued before outcome codes existed carries its reason only.
  return (r.code ? r.code === 'timed_out' : r.reason.startsWith('timed out')) ? 'timed_out' : 'failed';
}

const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200];
const WAIT_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900];

/**
 * The node's Prometheus metrics, served by the gateway's /metrics. Everything about
 * tasks is counted here, where each task is admitted and its result uploaded (once
 * per task); running tasks, queue depths and host gauges are read from Redis at
 * scrape time, so one scrape of the gateway covers the whole node. The executor and
 * the monitor serve their own process metrics on their health ports.
 */
@Injectable()
export class GatewayMetrics {
  readonly accepted: Counter;
  readonly refused: Counter<'reason'>;
  readonly finished: Counter<'outcome'>;
  readonly finishedByCode: Counter<'code'>;
  readonly duration: Histogram<'outcome'>;
  readonly queueWait: Histogram;
  readonly uploadAttempts: Counter;
  readonly uploadFailures: Counter;
  readonly uploadsRefused: Counter;
  readonly uploadsGivenUp: Counter;
  readonly poolRpcErrors: Counter<'method'>;
  readonly poolRelogins: Counter;
  readonly poolRegistrations: Counter;
  readonly poolLastHeartbeat: Gauge;

  constructor(
    @Inject(METRICS_REGISTRY) registry: Registry,
    refused: RefusedResults,
    running: RunningTasks,
    monitor: MonitorSamples,
    @Inject(TASKS_QUEUE) tasks: Queue,
    @Inject(RESULTS_QUEUE) results: Queue,
  ) {
    const r = [registry];
    this.accepted = new Counter({ name: 'hivemind_tasks_accepted_total', help: 'Tasks the node accepted', registers: r });
    this.refused = new Counter({ name: 'hivemind_tasks_refused_total', help: 'Tasks the node refused, by reason', labelNames: ['reason'], registers: r });
    this.finished = new Counter({
      name: 'hivemind_tasks_finished_total',
      help: 'Tasks whose result the pool took, by outcome (success, failed, stopped, timed_out)',
      labelNames: ['outcome'],
      registers: r,
    });
    this.finishedByCode = new Counter({
      name: 'hivemind_tasks_finished_by_code_total',
      help: 'Tasks whose result the pool took, by outcome code (timed_out, out_of_memory, quota_exceeded, result_too_large, ...)',
      labelNames: ['code'],
      registers: r,
    });
    this.duration = new Histogram({ name: 'hivemind_task_duration_seconds', help: 'Run time of finished tasks', labelNames: ['outcome'], buckets: DURATION_BUCKETS, registers: r });
    this.queueWait = new Histogram({ name: 'hivemind_task_queue_wait_seconds', help: 'Time from ExecuteTask to an executor taking the task', buckets: WAIT_BUCKETS, registers: r });
    this.uploadAttempts = new Counter({ name: 'hivemind_result_upload_attempts_total', help: 'Result uploads tried', registers: r });
    this.uploadFailures = new Counter({ name: 'hivemind_result_upload_failures_total', help: 'Result uploads that failed (retried)', registers: r });
    this.uploadsRefused = new Counter({
      name: 'hivemind_result_uploads_refused_total',
      help: 'Result uploads the pool refused (answered success=false): the task\'s slot is freed and the result retried slowly for RESULT_REFUSED_RETRY',
      registers: r,
    });
    this.uploadsGivenUp = new Counter({
      name: 'hivemind_result_uploads_given_up_total',
      help: 'Results given up and deleted after the pool kept refusing them for RESULT_REFUSED_RETRY',
      registers: r,
    });
    new Gauge({
      name: 'hivemind_results_refused_waiting',
      help: 'Results the pool refused that the node still retries (their slots are free)',
      registers: r,
      async collect() {
        this.set(await refused.count());
      },
    });
    this.poolRpcErrors = new Counter({ name: 'hivemind_pool_rpc_errors_total', help: 'Failed calls to the Node Pool, by method', labelNames: ['method'], registers: r });
    this.poolRelogins = new Counter({ name: 'hivemind_pool_relogins_total', help: 'Logins after the Node Pool refused the token (expired, or the pool restarted)', registers: r });
    this.poolRegistrations = new Counter({ name: 'hivemind_pool_registrations_total', help: 'RegisterWorkerNode calls the Node Pool accepted', registers: r });
    this.poolLastHeartbeat = new Gauge({
      name: 'hivemind_pool_last_heartbeat_timestamp_seconds',
      help: 'When the Node Pool last took a heartbeat (RegisterWorkerNode or ReportStatus), Unix seconds; 0 before the first',
      registers: r,
    });

    new Gauge({
      name: 'hivemind_tasks_running',
      help: 'Tasks whose container runs now',
      registers: r,
      async collect() {
        this.set(await running.count());
      },
    });
    new Gauge({
      name: 'hivemind_queue_jobs',
      help: 'Jobs in each queue, by state',
      labelNames: ['queue', 'state'],
      registers: r,
      async collect() {
        this.reset();
        for (const q of [tasks, results]) {
          const counts = await q.getJobCounts('wait', 'active', 'delayed', 'failed', 'prioritized');
          for (const [state, n] of Object.entries(counts)) this.set({ queue: q.name, state }, n);
        }
      },
    });
    const host = (name: string, help: string, pick: (s: HostSample) => number) =>
      new Gauge({
        name,
        help,
        registers: r,
        async collect() {
          const s = await monitor.latest();
          this.reset();
          if (s) this.set(pick(s));
        },
      });
    host('hivemind_host_cpu_percent', 'Host CPU use, percent (from the monitor)', (s) => s.cpuPercent);
    host('hivemind_host_memory_percent', 'Host memory use, percent', (s) => s.memoryPercent);
    host('hivemind_host_memory_used_bytes', 'Host memory in use', (s) => s.memoryUsedBytes);
    host('hivemind_host_disk_percent', 'Use of the disk that holds WORK_DIR, percent', (s) => s.diskPercent);
    host('hivemind_host_disk_free_bytes', 'Free bytes on the disk that holds WORK_DIR', (s) => s.diskFreeBytes);
    host('hivemind_host_network_receive_bytes_per_second', 'Host network receive rate', (s) => s.netRxBytesPerSec);
    host('hivemind_host_network_transmit_bytes_per_second', 'Host network transmit rate', (s) => s.netTxBytesPerSec);
    const gpu = (name: string, help: string, pick: (g: { utilizationPercent: number; memoryUsedMb: number; memoryTotalMb: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['gpu', 'name'],
        registers: r,
        async collect() {
          const s = await monitor.latest();
          this.reset();
          s?.gpus.forEach((g, i) => this.set({ gpu: String(i), name: g.name }, pick(g)));
        },
      });
    gpu('hivemind_host_gpu_utilization_percent', 'GPU use, percent', (g) => g.utilizationPercent);
    gpu('hivemind_host_gpu_memory_used_bytes', 'GPU memory in use', (g) => g.memoryUsedMb * 1024 * 1024);
  }

  /** A result the pool took: one finished task. */
  taskFinished(job: ResultJob): void {
    const outcome = outcomeLabel(job);
    this.finished.inc({ outcome });
    this.finishedByCode.inc({ code: job.code ?? 'unknown' });
    this.duration.observe({ outcome }, Math.max(0, (job.finishedAt - job.startedAt) / 1000));
    this.queueWait.observe(Math.max(0, (job.startedAt - job.receivedAt) / 1000));
  }
}
