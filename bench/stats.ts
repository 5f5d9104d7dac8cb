/**
 * Summary statistics for the benchmark's latency samples.
 *
 * Percentiles use the **nearest-rank** definition: for n samples sorted ascending, the p-th
 * percentile (0 < p <= 100) is the sample at 1-based rank `ceil(p / 100 * n)`. It is always one
 * of the measured values, never interpolated. A consequence worth knowing when reading a table:
 * with n <= 100 samples, p99 is the maximum (rank n); with n = 50, p95 is the 48th value.
 *
 * @module
 */

/** n, min, nearest-rank p50/p95/p99, max and mean of a set of samples, in the samples' unit. */
export interface LatencySummary {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** The statistics a target may be stated on. */
export type SummaryStat = Exclude<keyof LatencySummary, 'n'>;

/** The 1-based nearest rank of percentile `p` among `n` samples. */
export function nearestRank(p: number, n: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], received ${p}`);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`sample count must be a positive integer, received ${n}`);
  return Math.max(1, Math.ceil((p / 100) * n));
}

/** Nearest-rank percentile `p` of samples already sorted ascending. */
export function percentile(sorted: readonly number[], p: number): number {
  const value = sorted[nearestRank(p, sorted.length) - 1];
  if (value === undefined) throw new RangeError('percentile of no samples');
  return value;
}

/** Summarizes `samples` (any order); undefined when there are none. Non-finite samples are refused. */
export function summarize(samples: readonly number[]): LatencySummary | undefined {
  if (samples.length === 0) return undefined;
  for (const s of samples) {
    if (!Number.isFinite(s)) throw new RangeError(`samples must be finite numbers, received ${s}`);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    min: sorted[0] as number,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] as number,
    mean: sum / sorted.length,
  };
}

/** Rounds to 2 decimals (what the table and the JSON summaries show; raw samples keep full precision). */
export const round2 = (x: number): number => Math.round(x * 100) / 100;

/** A summary with every figure rounded to 2 decimals. */
export function rounded(summary: LatencySummary): LatencySummary {
  return {
    n: summary.n,
    min: round2(summary.min),
    p50: round2(summary.p50),
    p95: round2(summary.p95),
    p99: round2(summary.p99),
    max: round2(summary.max),
    mean: round2(summary.mean),
  };
}

/** Formats milliseconds with 2 decimals; `—` for a missing value. */
export const formatMs = (x: number | undefined): string => (x === undefined ? '—' : x.toFixed(2));
