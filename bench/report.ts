/**
 * Renders scenario results as plain-text tables (what `npm run bench` prints to stdout).
 *
 * @module
 */
import type { LatencyRow, ResourceRow, ScenarioResult } from './scenario.js';
import { formatMs } from './stats.js';

type Align = 'l' | 'r';

/** A text table: columns padded to their widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => ((align[i] ?? 'l') === 'r' ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

/** `p99 < 5 ms: met (1.23)` / `MISSED` / `—`. */
export function targetCell(row: LatencyRow): string {
  const targets = [...(row.target === undefined ? [] : [row.target]), ...(row.moreTargets ?? [])];
  if (targets.length === 0) return '—';
  return targets
    .map((t) => {
      const value = row.summary?.[t.stat];
      if (value === undefined) return `${t.text}: no data`;
      const met = t.inclusive === true ? value <= t.below : value < t.below;
      return `${t.text}: ${met ? 'met' : 'MISSED'}`;
    })
    .join('; ');
}

export function latencyTable(results: readonly ScenarioResult[]): string[] {
  const rows = results.flatMap((r) => r.rows.filter((x): x is LatencyRow => x.kind === 'latency'));
  if (rows.length === 0) return [];
  const body = rows.map((r) => {
    const s = r.summary;
    return [
      r.scenario,
      r.label,
      String(s?.n ?? 0),
      String(r.failures),
      formatMs(s?.min),
      formatMs(s?.p50),
      formatMs(s?.p95),
      formatMs(s?.p99),
      formatMs(s?.max),
      formatMs(s?.mean),
      targetCell(r),
    ];
  });
  return [
    'Latency, ms (percentiles: nearest rank; with n <= 100, p99 = max)',
    ...table(
      ['scenario', 'row', 'n', 'fail', 'min', 'p50', 'p95', 'p99', 'max', 'mean', 'target'],
      body,
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
    '',
    'What each row measures:',
    ...uniqueBy(rows, (r) => `${r.scenario}|${r.metric}`).map((r) => `  ${r.scenario}: ${r.metric}`),
  ];
}

export function resourceTable(results: readonly ScenarioResult[]): string[] {
  const rows = results.flatMap((r) => r.rows.filter((x): x is ResourceRow => x.kind === 'resource'));
  if (rows.length === 0) return [];
  const body = rows.map((r) => [
    r.scenario,
    r.label,
    String(r.pid),
    (r.windowMs / 1000).toFixed(2),
    r.cpuMs.toFixed(2),
    r.cpuPercent.toFixed(2),
    r.rssMiB.toFixed(2),
    r.peakRssMiB.toFixed(2),
  ]);
  return [
    'Idle resources (CPU% of one core over the window; RSS at its end; peak = VmHWM)',
    ...table(
      ['scenario', 'process', 'pid', 'window s', 'cpu ms', 'cpu %', 'RSS MiB', 'peak MiB'],
      body,
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  ];
}

/** Notes and failures, per scenario; at most `maxFailures` failures each (all of them are in the JSON). */
export function notesSection(results: readonly ScenarioResult[], maxFailures = 10): string[] {
  const lines: string[] = [];
  for (const r of results) {
    if (r.notes.length === 0 && r.failures.length === 0) continue;
    lines.push(`${r.name} (${(r.durationMs / 1000).toFixed(1)} s):`);
    for (const n of r.notes) lines.push(`  - ${n}`);
    for (const f of r.failures.slice(0, maxFailures)) lines.push(`  ! failed${f.foreign === true ? ' (compared library)' : ''}: ${f.row} trial ${f.trial}: ${f.cause}`);
    if (r.failures.length > maxFailures) lines.push(`  ! ... ${r.failures.length - maxFailures} more failures in the JSON`);
  }
  return lines;
}

function uniqueBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((t) => {
    const k = key(t);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
