/**
 * What a benchmark scenario is and what it reports. A scenario is one file in
 * `bench/scenarios/`, listed in `bench/scenarios/index.ts`; `bench/run.ts` runs the selected
 * ones in order, prints their rows as tables and writes everything (raw samples included) to JSON.
 *
 * @module
 */
import type { LatencySummary, SummaryStat } from './stats.js';

/** What every scenario receives from the runner. */
export interface BenchContext {
  /** Trials per latency row (from `--trials`, or the default / `--quick` count). */
  readonly trials: number;
  /** True for `--quick` smoke runs: scenarios may shorten windows that are not trial counts. */
  readonly quick: boolean;
  /** Length of the idle measurement window, in seconds. */
  readonly idleSeconds: number;
  /** A progress line (goes to stderr, so stdout stays the report). */
  readonly progress: (line: string) => void;
}

/** A goal stated next to a figure: `stat < below` ms (`stat <= below` when `inclusive`). */
export interface Target {
  readonly stat: SummaryStat;
  readonly below: number;
  /** The goal is `stat <= below` (the wording), not `<`. */
  readonly inclusive?: boolean;
  /** How the table shows it, e.g. `p99 < 5 ms`. */
  readonly text: string;
}

/** One latency row: a set of samples of one quantity under one setting. */
export interface LatencyRow {
  readonly kind: 'latency';
  readonly scenario: string;
  /** What distinguishes this row within its scenario, e.g. `tcp` or `ipc, reason=silence`. */
  readonly label: string;
  /** What was measured, from which instant to which. */
  readonly metric: string;
  /** Trials that belong to this row and succeeded (samples) or failed. */
  readonly failures: number;
  readonly target: Target | undefined;
  /** Further goals on the same samples (e.g. p50 and p99), shown after `target`. */
  readonly moreTargets?: readonly Target[];
  /** Rounded to 2 decimals; undefined when there are no samples. */
  readonly summary: LatencySummary | undefined;
  /** Raw samples in ms, full precision, in trial order. */
  readonly samples: readonly number[];
}

/** One process's resource use over a window. */
export interface ResourceRow {
  readonly kind: 'resource';
  readonly scenario: string;
  readonly label: string;
  readonly pid: number;
  readonly windowMs: number;
  /** CPU time (user + system) over wall time, in percent of one core. */
  readonly cpuPercent: number;
  readonly cpuMs: number;
  /** VmRSS at the end of the window, in MiB. */
  readonly rssMiB: number;
  /** VmHWM (peak RSS over the process's life), in MiB. */
  readonly peakRssMiB: number;
  /** Per-second samples: wall ms since the window began, cumulative CPU ms, RSS MiB. */
  readonly samples: ReadonlyArray<{ readonly t: number; readonly cpuMs: number; readonly rssMiB: number }>;
}

export type Row = LatencyRow | ResourceRow;

/** A trial that produced no sample, and why. */
export interface TrialFailure {
  readonly row: string;
  readonly trial: number;
  readonly cause: string;
  /**
   * A failure of another library measured for comparison (unix-socket-leader, say): listed like
   * the others, but it does not make the run exit 1, which says failover-watch failed a trial.
   */
  readonly foreign?: boolean;
}

export interface ScenarioResult {
  readonly name: string;
  readonly description: string;
  /** Every knob that shaped the numbers. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly rows: readonly Row[];
  readonly failures: readonly TrialFailure[];
  /** Per-trial records (instants, ids, reasons), for whoever wants to dig. */
  readonly trials: readonly unknown[];
  /** Observations worth printing under the table (e.g. reason counts, safety checks). */
  readonly notes: readonly string[];
  readonly durationMs: number;
}

export interface Scenario {
  /** Kebab-case, what `--only` matches. */
  readonly name: string;
  readonly description: string;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}
