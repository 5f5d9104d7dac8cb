/**
 * The chaos run's summary table, as plain text. Pure: a report in, lines out.
 *
 * @module
 */
import { LOSS_CAUSES, percentile, type CheckOptions, type CheckReport, type LossCause } from './checker.js';

export interface SummaryContext {
  readonly seed: number;
  readonly endpoint: string;
  readonly nodes: number;
  readonly durationMs: number;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  readonly bounds: CheckOptions;
  readonly injectorStalls?: ReadonlyArray<{ readonly at: number; readonly ms: number }>;
}

const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(1)}`);

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
}

const CAUSE_TEXT: Record<LossCause, string> = {
  crash: 'crash (SIGKILL)',
  hang: 'hang, then SIGKILL',
  shutdown: 'graceful shutdown',
  stepdown: 'stepDown',
  demoted: 'demoted (higher epoch)',
  exit: 'exit on its own',
};

/** The summary printed at the end of `npm run chaos`. */
export function formatSummary(ctx: SummaryContext, report: CheckReport): string {
  const s = report.stats;
  const out: string[] = [];
  out.push(
    `chaos: seed ${ctx.seed}, ${ctx.nodes} nodes on ${ctx.endpoint}, ${(ctx.durationMs / 1000).toFixed(0)} s, ` +
      `heartbeat ${ctx.heartbeatInterval}/${ctx.heartbeatTimeout} ms, ${s.processes} processes in all`,
  );
  out.push('');
  out.push('faults injected');
  const faultRows = Object.entries(s.faultsByKind).sort(([a], [b]) => a.localeCompare(b));
  const total = faultRows.reduce((n, [, c]) => n + c, 0);
  out.push(...table([['  kind', 'count'], ...faultRows.map(([k, c]) => [`  ${k}`, String(c)]), ['  total', String(total)]]));
  out.push('');
  out.push('failovers: fault -> next roleChanged to primary, ms (undisturbed windows; disturbed ones checked from the last disturbance)');
  const rows: string[][] = [['  cause', 'failovers', 'samples', 'p50', 'p99', 'worst', 'bound', 'disturbed', 'worst dist.']];
  for (const cause of LOSS_CAUSES) {
    const clean = s.takeoverMs[cause];
    const disturbed = s.disturbedTakeoverMs[cause];
    if (s.failovers[cause] === 0 && clean.length === 0 && disturbed.length === 0) continue;
    const bound = cause === 'shutdown' || cause === 'stepdown' ? ctx.bounds.shutdownBound : ctx.bounds.crashBound;
    rows.push([
      `  ${CAUSE_TEXT[cause]}`,
      String(s.failovers[cause]),
      String(clean.length),
      ms(percentile(clean, 50)),
      ms(percentile(clean, 99)),
      ms(clean.length === 0 ? undefined : Math.max(...clean)),
      String(bound),
      String(disturbed.length),
      ms(disturbed.length === 0 ? undefined : Math.max(...disturbed)),
    ]);
  }
  out.push(...table(rows));
  const reasons = Object.entries(s.takeoverReasons).map(([r, c]) => `${r} ${c}`).join(', ');
  out.push(`  taken over by reason: ${reasons || '-'}`);
  out.push(`  losses excused (no eligible successor): ${s.lossesExcused}; unchecked (run ended): ${s.lossesUnchecked}`);
  const teardown = LOSS_CAUSES.flatMap((c) => s.teardownMs[c]);
  if (teardown.length > 0) {
    out.push(
      `  fault -> lost process's exit observed (bounds run from the later of the two): p50 ${ms(percentile(teardown, 50))}, ` +
        `p99 ${ms(percentile(teardown, 99))}, worst ${ms(Math.max(...teardown))} ms`,
    );
  }
  const stalls = ctx.injectorStalls ?? [];
  out.push(
    `  machine load: the injector's event loop woke > 25 ms late ${stalls.length} times` +
      (stalls.length > 0 ? `, worst ${ms(Math.max(...stalls.map((st) => st.ms)))} ms` : ''),
  );
  out.push('');
  out.push(
    `primary terms ${s.primaryTerms} (+${s.unconfirmedTerms} seen only by onPromote), highest epoch ${s.maxEpoch}; ` +
      `primary hangs ${s.primaryHangs} (resumed as primary ${s.primaryHangsResumed}, longest ${s.longestPrimaryHangMs.toFixed(0)} ms)`,
  );
  out.push(`split brains: ${s.splitBrains}   (possible overlaps inside a SIGKILL's timing uncertainty: ${s.possibleOverlaps})`);
  if (ctx.bounds.wakeBound !== undefined) {
    out.push(
      `lease mode: primaries replaced while SIGSTOPped (higher epoch, stepped down on waking within ${ctx.bounds.wakeBound} ms): ` +
        `${s.replacedWhileStopped}, longest SIGCONT -> step-down ${s.longestWakeMs.toFixed(1)} ms`,
    );
  }
  out.push(`violations: ${report.violations.length}`);
  const shown = report.violations.slice(0, 30);
  for (const v of shown) out.push(`  [${v.kind}] ${v.message}`);
  if (report.violations.length > shown.length) out.push(`  ... and ${report.violations.length - shown.length} more`);
  out.push(report.ok ? 'PASS' : `FAIL (replay with --seed ${ctx.seed})`);
  return out.join('\n');
}
