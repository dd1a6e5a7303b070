/** Summaries and the stable JSON form of bench results. */

export interface Summary {
  median: number;
  p95: number;
  n: number;
}

/**
 * Nearest-rank percentile (the smallest sample with at least p% of the
 * samples at or below it): always a measured value, never an interpolation,
 * so with few runs p95 is simply the slowest run.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The middle sample, or the mean of the two middle ones. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarise(samples: readonly number[]): Summary {
  return { median: median(samples), p95: percentile(samples, 95), n: samples.length };
}

/** Summaries of each named series: `{ key: [samples] }` -> `{ key: Summary }`. */
export function summariseAll(series: Record<string, number[]>): Record<string, Summary> {
  const out: Record<string, Summary> = {};
  for (const [key, samples] of Object.entries(series)) out[key] = summarise(samples);
  return out;
}

/** Appends one value per key to `series`, creating the arrays as needed. */
export function collect(series: Record<string, number[]>, values: Record<string, number>): void {
  for (const [key, value] of Object.entries(values)) (series[key] ??= []).push(value);
}

/**
 * Sorted keys at every level and numbers rounded to 0.1, so two runs of the
 * same bench give JSON that diffs line by line (milliseconds below 0.1 are
 * noise on any machine this runs on).
 */
export function stableValue(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.round(value * 10) / 10 : null;
  if (Array.isArray(value)) return value.map(stableValue);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = stableValue(v);
    }
    return out;
  }
  return value;
}

export function stableJson(value: unknown): string {
  return `${JSON.stringify(stableValue(value), null, 2)}\n`;
}
