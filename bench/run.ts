/**
 * `npm run bench`: runs the benchmark scenarios (real watcher processes on loopback endpoints),
 * prints a table to stdout (progress goes to stderr) and writes every figure, setting and raw
 * sample to `bench/results/latest.json`.
 *
 *   npm run bench                                   # all scenarios, 50 trials per latency row
 *   npm run bench -- --quick                        # smoke run: 10 trials, short idle window
 *   npm run bench -- --only graceful-handover --trials 200
 *
 * Exit code: 0 when every trial produced a sample; 1 when a trial failed, a scenario errored or
 * a safety check did not hold; 2 for bad arguments. The process ends on its own: every child is
 * gone and no timer is left when the scenarios are done.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release, totalmem, type as osType } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CHILD_JS_DIR_ENV, childRuntime, REHEARSALS_ENV } from '../harness/child-runtime.js';
import { endTracked } from './lib/live-processes.js';
import { describeLoad, observeLoad, type LoadReport } from './lib/system-load.js';
import { latencyTable, notesSection, resourceTable } from './report.js';
import type { BenchContext, ScenarioResult } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEFAULT_OUT = resolve(ROOT, 'bench/results/latest.json');
/** Where tsconfig.bench.json puts the compiled harness. */
const BENCH_JS = resolve(ROOT, 'node_modules/.cache/failover-watch/bench-js');
const TSC = resolve(ROOT, 'node_modules/typescript/bin/tsc');
const DEFAULT_TRIALS = 50;
const QUICK_TRIALS = 10;
const DEFAULT_IDLE_SECONDS = 10;
const QUICK_IDLE_SECONDS = 3;

const HELP = `Usage: npm run bench -- [options]

  --trials N         trials per latency row (default ${DEFAULT_TRIALS}; ${QUICK_TRIALS} with --quick)
  --only NAME        run only this scenario; repeat or comma-separate for several
                     (${SCENARIOS.map((s) => s.name).join(', ')})
  --quick            smoke run: ${QUICK_TRIALS} trials, ${QUICK_IDLE_SECONDS} s idle window
  --idle-seconds N   idle-cost window in seconds (default ${DEFAULT_IDLE_SECONDS}; ${QUICK_IDLE_SECONDS} with --quick)
  --out PATH         JSON output (default ${relative(process.cwd(), DEFAULT_OUT) || DEFAULT_OUT})
  --rehearsals N     the watchers' \`rehearsals\` option (default: the library's, 100); 0 shows
                     what they are worth
  --tsx              run the child processes from TypeScript source through tsx, as the tests
                     do, instead of compiling them first (see "Child processes" in bench/README.md)
  -h, --help         this text
`;

interface Args {
  readonly trials: number;
  readonly quick: boolean;
  readonly idleSeconds: number;
  readonly only: readonly string[];
  readonly out: string;
  readonly tsx: boolean;
  readonly rehearsals: number | undefined;
}

function parse(argv: string[]): Args | string {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        trials: { type: 'string' },
        only: { type: 'string', multiple: true },
        quick: { type: 'boolean', default: false },
        'idle-seconds': { type: 'string' },
        out: { type: 'string' },
        tsx: { type: 'boolean', default: false },
        rehearsals: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return (error as Error).message;
  }
  if (values.help) return 'help';
  const quick = values.quick ?? false;
  const int = (name: string, raw: string | undefined, fallback: number, max: number, min = 1): number | string => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    return Number.isInteger(n) && n >= min && n <= max ? n : `--${name} expects an integer from ${min} to ${max}, received '${raw}'`;
  };
  const trials = int('trials', values.trials, quick ? QUICK_TRIALS : DEFAULT_TRIALS, 100_000);
  if (typeof trials === 'string') return trials;
  const idleSeconds = int('idle-seconds', values['idle-seconds'], quick ? QUICK_IDLE_SECONDS : DEFAULT_IDLE_SECONDS, 3600);
  if (typeof idleSeconds === 'string') return idleSeconds;
  const only = (values.only ?? []).flatMap((o) => o.split(',')).map((o) => o.trim()).filter((o) => o !== '');
  const unknown = only.filter((o) => !SCENARIOS.some((s) => s.name === o));
  if (unknown.length > 0) {
    return `--only: unknown scenario ${unknown.map((u) => `'${u}'`).join(', ')}; expected one of ${SCENARIOS.map((s) => s.name).join(', ')}`;
  }
  const rehearsals = values.rehearsals === undefined ? undefined : int('rehearsals', values.rehearsals, 0, 10_000, 0);
  if (typeof rehearsals === 'string') return rehearsals;
  return {
    trials,
    quick,
    idleSeconds,
    only,
    out: values.out === undefined ? DEFAULT_OUT : resolve(values.out),
    tsx: values.tsx ?? false,
    rehearsals,
  };
}

function machine(): Record<string, unknown> {
  const list = cpus();
  const git = (...args: string[]): string | undefined => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const commit = git('rev-parse', 'HEAD');
  // The figures are of the working tree: say whether the measured code differs from the commit.
  const changes = git('status', '--porcelain', '--', 'src', 'harness', 'package.json');
  const uncommittedSourceChanges = changes === undefined ? undefined : changes.split('\n').filter((l) => l !== '').length;
  return {
    cpus: list.length,
    cpuModel: list[0]?.model,
    totalMemMiB: Math.round(totalmem() / 2 ** 20),
    os: osType(),
    platform: platform(),
    arch: arch(),
    osRelease: release(),
    node: process.version,
    v8: process.versions.v8,
    childProcesses: childRuntime(),
    loadavgAtStart: loadavg(),
    commit,
    uncommittedSourceChanges,
  };
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  if (args === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (typeof args === 'string') {
    process.stderr.write(`bench: ${args}\n\n${HELP}`);
    return 2;
  }
  if (!args.tsx) {
    // Children run compiled JavaScript on plain node, as deployed code does (harness/child-runtime.ts).
    process.stderr.write(`bench: compiling the harness (tsc -p tsconfig.bench.json) into ${relative(ROOT, BENCH_JS)}\n`);
    try {
      execFileSync(process.execPath, [TSC, '-p', 'tsconfig.bench.json'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
    } catch (error) {
      process.stderr.write(`bench: compiling the harness failed: ${(error as Error).message}\n`);
      return 1;
    }
    process.env[CHILD_JS_DIR_ENV] = BENCH_JS;
  }
  if (args.rehearsals !== undefined) process.env[REHEARSALS_ENV] = String(args.rehearsals);
  const selected = args.only.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => args.only.includes(s.name));
  const info = machine();
  const endRunLoad = observeLoad();
  const date = new Date().toISOString();
  const started = performance.now();
  const progress = (line: string): void => {
    process.stderr.write(`[bench +${((performance.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
  };
  const ctx: BenchContext = { trials: args.trials, quick: args.quick, idleSeconds: args.idleSeconds, progress };

  const results: Array<ScenarioResult & { readonly load: LoadReport }> = [];
  const errors: Array<{ scenario: string; error: string }> = [];
  for (const scenario of selected) {
    progress(`${scenario.name}: ${scenario.description}`);
    const endLoad = observeLoad();
    try {
      const result = await scenario.run(ctx);
      const load = endLoad();
      results.push({ ...result, notes: [describeLoad(load), ...result.notes], load });
    } catch (error) {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      errors.push({ scenario: scenario.name, error: text });
      progress(`${scenario.name} errored: ${text}`);
    }
  }
  const durationMs = performance.now() - started;
  const runLoad = endRunLoad();

  const lines = [
    `failover-watch bench  ${date}  node ${process.version}  ${String(info.os)} ${String(info.osRelease)}  ${String(info.cpus)} x ${String(info.cpuModel)}`,
    `trials per latency row: ${args.trials}${args.quick ? ' (--quick)' : ''}; total ${(durationMs / 1000).toFixed(1)} s; code: ${
      typeof info.commit === 'string' ? info.commit.slice(0, 10) : 'unknown commit'
    }${typeof info.uncommittedSourceChanges === 'number' && info.uncommittedSourceChanges > 0 ? ` + ${info.uncommittedSourceChanges} uncommitted file(s) in src/harness` : ''}`,
    `child processes: ${String(info.childProcesses)}`,
    describeLoad(runLoad),
    '',
  ];
  const lat = latencyTable(results);
  const res = resourceTable(results);
  const notes = notesSection(results);
  if (lat.length > 0) lines.push(...lat, '');
  if (res.length > 0) lines.push(...res, '');
  if (notes.length > 0) lines.push('Notes', ...notes, '');
  for (const e of errors) lines.push(`ERROR in ${e.scenario}: ${e.error.split('\n')[0] ?? ''}`);

  const report = {
    tool: 'failover-watch bench',
    schemaVersion: 1,
    date,
    durationMs,
    argv: process.argv.slice(2),
    options: { trials: args.trials, quick: args.quick, idleSeconds: args.idleSeconds, only: args.only, tsx: args.tsx, rehearsals: args.rehearsals ?? 'default' },
    percentileDefinition: 'nearest rank: the sample at 1-based rank ceil(p/100 * n) of the sorted samples',
    machine: { ...info, loadavgAtEnd: loadavg(), load: runLoad },
    scenarios: results,
    errors,
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
  lines.push(`JSON: ${relative(process.cwd(), args.out) || args.out}`);
  process.stdout.write(`${lines.join('\n')}\n`);

  // A compared library's own failures are reported, not ours to fail the run with.
  const failed = results.some((r) => r.failures.some((f) => f.foreign !== true) || r.notes.some((n) => n.includes('SAFETY')));
  return failed || errors.length > 0 ? 1 : 0;
}

// Cut short (Ctrl-C, SIGTERM, or any exit before the scenarios cleaned up): end exactly the
// processes this run started, by pid, and remove its temp directories. 'exit' covers a second
// signal too, which tsx's own handler turns into process.exit().
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    endTracked();
    process.stderr.write(`bench: ${signal}; ended the processes it started\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
process.on('exit', endTracked);

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    endTracked();
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
