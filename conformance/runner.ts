/**
 * Runs conformance scenarios one after the other and checks what every scenario must satisfy
 * besides its own checks: the peer's `role` lines carry integer epochs, and no two terms on one
 * endpoint (peer and library nodes) share an epoch, which in the order they happened only grow
 * (PROTOCOL.md 6.2). Each scenario is bounded in time; whatever it started is ended.
 *
 * @module
 */
import { hostNow } from '../harness/child-runtime.js';
import { ConformanceFailure, ScenarioContext, type RoleTerm, type Scenario, type ScenarioResult, type Transport } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

/** What to run. */
export interface RunOptions {
  /** The peer's command template (docs/CONFORMANCE.md). */
  readonly peer: string;
  readonly transport: Transport;
  /** Scenario names; all when empty or absent. */
  readonly only?: readonly string[];
  /** Called before and after each scenario (progress on stderr). */
  readonly onProgress?: (line: string) => void;
  /** Bound on one scenario, ms (default 60 000). */
  readonly scenarioTimeout?: number;
}

/** The whole run's outcome. */
export interface RunReport {
  readonly transport: Transport;
  readonly peer: string;
  readonly results: readonly ScenarioResult[];
  /**
   * True when every selected scenario passed; in a run of all scenarios, those that do not apply
   * to the transport are skipped without making it false.
   */
  readonly ok: boolean;
}

/** The scenarios named in `only` (all when empty); throws on an unknown name. */
export function selectScenarios(only: readonly string[] = []): Scenario[] {
  if (only.length === 0) return [...SCENARIOS];
  const unknown = only.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return SCENARIOS.filter((s) => only.includes(s.name));
}

export async function runConformance(options: RunOptions): Promise<RunReport> {
  const results: ScenarioResult[] = [];
  for (const scenario of selectScenarios(options.only)) {
    options.onProgress?.(`${scenario.name} ...`);
    const result = await runOne(scenario, options);
    options.onProgress?.(`${scenario.name}: ${result.status} (${result.ms.toFixed(0)} ms)${result.detail === undefined ? '' : `: ${result.detail}`}`);
    results.push(result);
  }
  // A scenario named in --only that could not run is not a pass; in a full run, the ones that do
  // not apply to the transport are skipped without failing it.
  const named = (options.only ?? []).length > 0;
  const ok = results.length > 0 && results.every((r) => r.status === 'pass' || (r.status === 'skip' && !named));
  return { transport: options.transport, peer: options.peer, results, ok };
}

async function runOne(scenario: Scenario, options: RunOptions): Promise<ScenarioResult> {
  const base = { name: scenario.name, checks: scenario.checks, sections: scenario.sections };
  if (scenario.transports !== undefined && !scenario.transports.includes(options.transport)) {
    return { ...base, status: 'skip', ms: 0, detail: `needs --transport ${scenario.transports.join(' or ')}`, notes: [] };
  }
  const ctx = new ScenarioContext(options.transport, options.peer);
  const started = hostNow();
  const bound = options.scenarioTimeout ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  let detail: string | undefined;
  try {
    await Promise.race([
      scenario.run(ctx),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ConformanceFailure(`scenario took more than ${bound} ms`)), bound);
      }),
    ]);
    detail = termProblem(ctx);
  } catch (error) {
    detail = error instanceof ConformanceFailure ? error.message : `${(error as Error).message ?? String(error)}`;
  } finally {
    clearTimeout(timer);
    await ctx.cleanup();
  }
  const ms = hostNow() - started;
  return { ...base, status: detail === undefined ? 'pass' : 'fail', ms, ...(detail === undefined ? {} : { detail }), notes: ctx.notes };
}

/** The checks every scenario gets: integer epochs, never repeated, growing in time order on each endpoint. */
function termProblem(ctx: ScenarioContext): string | undefined {
  const terms = ctx.terms();
  const bad = terms.find((t) => !Number.isSafeInteger(t.epoch) || t.epoch < 1);
  if (bad !== undefined) return `${bad.node} became primary with an invalid epoch ${String(bad.epoch)}`;
  // One cluster per endpoint: a scenario may run two side by side.
  for (const endpoint of new Set(terms.map((t) => t.endpoint))) {
    const cluster = terms.filter((t) => t.endpoint === endpoint);
    for (let i = 1; i < cluster.length; i++) {
      const [a, b] = [cluster[i - 1], cluster[i]] as [RoleTerm, RoleTerm];
      if (b.epoch <= a.epoch) return `epochs must only grow on ${endpoint}: ${a.node} took ${a.epoch}, then ${b.node} took ${b.epoch}`;
    }
  }
  return undefined;
}

/** The report as a table (one row per scenario, then the notes and failures). */
export function formatReport(report: RunReport): string {
  const rows = report.results.map((r) => [r.status.toUpperCase(), r.name, r.status === 'skip' ? '' : `${(r.ms / 1000).toFixed(1)} s`, r.checks]);
  const widths = [4, Math.max(8, ...rows.map((r) => (r[1] as string).length)), 7];
  const lines = [`conformance: transport ${report.transport}`, `peer: ${report.peer}`, ''];
  for (const row of rows) lines.push(`${(row[0] as string).padEnd(widths[0] as number)}  ${(row[1] as string).padEnd(widths[1] as number)}  ${(row[2] as string).padStart(widths[2] as number)}  ${row[3]}`);
  const details = report.results.filter((r) => r.detail !== undefined || r.notes.length > 0);
  if (details.length > 0) lines.push('');
  for (const r of details) {
    if (r.detail !== undefined) lines.push(`${r.name}: ${r.status === 'fail' ? 'FAILED: ' : ''}${r.detail}`);
    for (const note of r.notes) lines.push(`${r.name}: ${note}`);
  }
  const counts = (s: ScenarioResult['status']): number => report.results.filter((r) => r.status === s).length;
  lines.push('', `${counts('pass')} passed, ${counts('fail')} failed, ${counts('skip')} skipped`);
  return lines.join('\n');
}
