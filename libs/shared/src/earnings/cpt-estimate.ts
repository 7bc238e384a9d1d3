/**
 * The node's own estimate of the CPT a task earns, with the HiveMind seed worker's
 * formula. The pool decides the real credit; this is what the volunteer is shown.
 */
export interface CptInputs {
  /** Wall-clock run time of the task in seconds. */
  durationSeconds: number;
  /** Average CPU use of the task, in percent of the CPUs it was given (see TaskUsageAverage). */
  avgCpuPercent: number;
  /** Average memory use of the task, in percent of its memory limit. */
  avgMemoryPercent: number;
  /** Average GPU use, in percent (0 without a GPU). */
  avgGpuPercent: number;
}

export interface CptEstimate {
  inputs: CptInputs;
  base: number;
  /** Average of CPU % and memory %, which picks the multiplier. */
  usagePercent: number;
  usageMultiplier: number;
  timeBonus: number;
  gpuBonus: number;
  total: number;
}

export const CPT_BASE = 10;

/** > 80 → 1.5, > 50 → 1.2, > 20 → 1.0, else 0.8 (thresholds are exclusive). */
export function usageMultiplier(usagePercent: number): number {
  if (usagePercent > 80) return 1.5;
  if (usagePercent > 50) return 1.2;
  if (usagePercent > 20) return 1.0;
  return 0.8;
}

const finite = (v: number) => (Number.isFinite(v) && v > 0 ? v : 0);

/** total = max(1, int(base × multiplier × min(duration/3600, 2) + gpu% × 0.01)). */
export function estimateCpt(raw: CptInputs): CptEstimate {
  const inputs: CptInputs = {
    durationSeconds: finite(raw.durationSeconds),
    avgCpuPercent: finite(raw.avgCpuPercent),
    avgMemoryPercent: finite(raw.avgMemoryPercent),
    avgGpuPercent: finite(raw.avgGpuPercent),
  };
  const usagePercent = (inputs.avgCpuPercent + inputs.avgMemoryPercent) / 2;
  const mult = usageMultiplier(usagePercent);
  const timeBonus = Math.min(inputs.durationSeconds / 3600, 2.0);
  const gpuBonus = inputs.avgGpuPercent * 0.01;
  const total = Math.max(1, Math.trunc(CPT_BASE * mult * timeBonus + gpuBonus));
  return { inputs, base: CPT_BASE, usagePercent, usageMultiplier: mult, timeBonus, gpuBonus, total };
}

/** One line per factor, for execution_log.txt and the task's history entry. */
export function describeCpt(e: CptEstimate): string {
  const r = (v: number, d = 4) => Number(v.toFixed(d));
  return [
    `estimated CPT: ${e.total} (the Node Pool decides the real credit)`,
    `  inputs: duration ${r(e.inputs.durationSeconds, 3)} s, cpu ${r(e.inputs.avgCpuPercent, 2)} %, memory ${r(e.inputs.avgMemoryPercent, 2)} %, gpu ${r(e.inputs.avgGpuPercent, 2)} %`,
    `  usage (cpu+memory)/2 = ${r(e.usagePercent, 2)} % -> multiplier ${e.usageMultiplier}`,
    `  time bonus min(duration/3600, 2) = ${r(e.timeBonus)}`,
    `  gpu bonus gpu% x 0.01 = ${r(e.gpuBonus)}`,
    `  total max(1, int(${e.base} x ${e.usageMultiplier} x ${r(e.timeBonus)} + ${r(e.gpuBonus)})) = ${e.total}`,
  ].join('\n');
}
