/** Order statistics for benchmark samples. */
export function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface Summary {
  n: number;
  median: number;
  p25: number;
  p75: number;
  min: number;
  max: number;
}

export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p25: quantile(s, 0.25), p75: quantile(s, 0.75), min: s[0], max: s[s.length - 1] };
}

export const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
export const row = (name: string, s: Summary) =>
  `| ${name} | ${s.n} | ${fmt(s.median)} | ${fmt(s.p25)} – ${fmt(s.p75)} | ${fmt(s.min)} – ${fmt(s.max)} |`;
