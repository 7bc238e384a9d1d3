import { CptInputs } from './cpt-estimate';

/**
 * Running averages of one task's measured usage, fed by the executor's usage samples
 * (about one per TASK_USAGE_INTERVAL). CPU is taken as a percent of the CPUs the task
 * was given (a task busy on all of them is at 100 %), memory as a percent of its memory
 * limit: how much of what the node gave the task it used, as `docker stats` shows it.
 */
export class TaskUsageAverage {
  private cpuSum = 0;
  private memSum = 0;
  samples = 0;

  /** @param cpus the CPUs the task was given (its container's limit). */
  constructor(private readonly cpus: number) {}

  /**
   * @param cpuPercent percent of one core (as the runtimes measure it)
   * @param memoryPercent percent of the task's memory limit
   */
  add(cpuPercent: number, memoryPercent: number): void {
    if (!Number.isFinite(cpuPercent) || !Number.isFinite(memoryPercent)) return;
    const cpus = this.cpus > 0 ? this.cpus : 1;
    this.cpuSum += Math.min(100, Math.max(0, cpuPercent / cpus));
    this.memSum += Math.min(100, Math.max(0, memoryPercent));
    this.samples += 1;
  }

  get avgCpuPercent(): number {
    return this.samples ? this.cpuSum / this.samples : 0;
  }

  get avgMemoryPercent(): number {
    return this.samples ? this.memSum / this.samples : 0;
  }

  /** The estimate's inputs for a run of `durationSeconds` (without GPU: tasks get none yet). */
  inputs(durationSeconds: number): CptInputs {
    return { durationSeconds, avgCpuPercent: this.avgCpuPercent, avgMemoryPercent: this.avgMemoryPercent, avgGpuPercent: 0 };
  }
}
