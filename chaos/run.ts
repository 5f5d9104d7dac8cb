/**
 * `npm run chaos -- --duration 600 [--seed N] [--backend etcd|postgres|redis]`: the long chaos run. Injects faults into N watcher
 * processes (chaos/injector.ts), checks the recorded history (chaos/checker.ts), prints the
 * summary table and exits 1 on any violation (2 on bad arguments or a run that could not start).
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { checkHistory, DEFAULT_CHECK_OPTIONS, type CheckOptions } from './checker.js';
import { DEFAULT_CHAOS_OPTIONS, runChaos, type ChaosOptions } from './injector.js';
import { LEASE_PROFILES, runLeaseChaos, type LeaseBackend } from './lease-injector.js';
import { randomSeed } from './prng.js';
import { formatSummary } from './summary.js';

export interface RunArgs {
  /** `zmq` (watcher processes, chaos/injector.ts) or a lease backend (chaos/lease-injector.ts). */
  readonly backend: 'zmq' | LeaseBackend;
  /** Lease backends: also pause (and restart) the server where the profile does not by default (Redis). */
  readonly serverFaults: boolean;
  readonly seed: number | undefined;
  readonly durationMs: number;
  readonly nodes: number;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  readonly transport: ChaosOptions['transport'];
  readonly priorities: boolean;
  readonly bounds: CheckOptions;
  readonly historyFile: string | undefined;
  readonly verbose: boolean;
  readonly help: boolean;
}

export const USAGE = `usage: npm run chaos -- [options]
  --backend <b>            zmq (default), etcd, postgres or redis: the lease backends run
                           against a private server (chaos/lease-injector.ts), 4 nodes by default
  --server-faults          lease backends: pause the server (now the default for every backend)
  --duration <s>           seconds of fault injection (default 60)
  --seed <n>               PRNG seed, to replay a run's choices (default: random, printed)
  --nodes <n>              processes, at least 5 (zmq) or 4 (default 5 or 4)
  --heartbeat-interval <ms>  (default ${DEFAULT_CHAOS_OPTIONS.heartbeatInterval})
  --heartbeat-timeout <ms>   (default ${DEFAULT_CHAOS_OPTIONS.heartbeatTimeout})
  --crash-bound <ms>       SIGKILL -> next primary (default ${DEFAULT_CHECK_OPTIONS.crashBound}; lease backends: their profile's)
  --shutdown-bound <ms>    shutdown/stepDown -> next primary (default ${DEFAULT_CHECK_OPTIONS.shutdownBound}; lease backends: their profile's)
  --transport tcp|ipc      endpoint kind (default: drawn from the seed)
  --no-priorities          no random priorities
  --history <file>         write the recorded history as JSON
  --verbose                print every fault as it is injected`;

/** Parses the arguments; throws a RangeError naming the bad option. */
export function parseArgs(argv: readonly string[]): RunArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const known = ['backend', 'duration', 'seed', 'nodes', 'heartbeat-interval', 'heartbeat-timeout', 'crash-bound', 'shutdown-bound', 'transport', 'history'];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h' || arg === '--verbose' || arg === '--no-priorities' || arg === '--server-faults') {
      flags.add(arg.replace(/^-+/, ''));
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m === null || !known.includes(m[1]!)) throw new RangeError(`unknown argument ${JSON.stringify(arg)}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new RangeError(`--${m[1]} expects a value`);
    values.set(m[1]!, value);
  }
  const number = (name: string, fallback: number, min: number): number => {
    const raw = values.get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new RangeError(`--${name} expects a number >= ${min}, received ${JSON.stringify(raw)}`);
    return n;
  };
  const transport = values.get('transport') ?? 'random';
  if (transport !== 'tcp' && transport !== 'ipc' && transport !== 'random') {
    throw new RangeError(`--transport expects tcp or ipc, received ${JSON.stringify(transport)}`);
  }
  const backend = values.get('backend') ?? 'zmq';
  if (backend !== 'zmq' && backend !== 'etcd' && backend !== 'postgres' && backend !== 'redis') {
    throw new RangeError(`--backend expects zmq, etcd, postgres or redis, received ${JSON.stringify(backend)}`);
  }
  const minNodes = backend === 'zmq' ? 5 : 4;
  const baseBounds = backend === 'zmq' ? DEFAULT_CHECK_OPTIONS : LEASE_PROFILES[backend].bounds;
  const heartbeatInterval = number('heartbeat-interval', DEFAULT_CHAOS_OPTIONS.heartbeatInterval, 1);
  const heartbeatTimeout = number('heartbeat-timeout', DEFAULT_CHAOS_OPTIONS.heartbeatTimeout, 2);
  if (heartbeatTimeout <= heartbeatInterval) {
    throw new RangeError(`--heartbeat-timeout must exceed --heartbeat-interval (${heartbeatInterval}), received ${heartbeatTimeout}`);
  }
  return {
    backend,
    serverFaults: flags.has('server-faults'),
    seed: values.has('seed') ? Math.trunc(number('seed', 0, 1)) : undefined,
    durationMs: number('duration', 60, 1) * 1000,
    nodes: Math.trunc(number('nodes', minNodes, minNodes)),
    heartbeatInterval,
    heartbeatTimeout,
    transport,
    priorities: !flags.has('no-priorities'),
    bounds: {
      ...baseBounds,
      crashBound: number('crash-bound', baseBounds.crashBound, 1),
      shutdownBound: number('shutdown-bound', baseBounds.shutdownBound, 1),
    },
    historyFile: values.get('history'),
    verbose: flags.has('verbose'),
    help: flags.has('help') || flags.has('h'),
  };
}

export interface RunIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** Runs the chaos experiment; returns the exit code. */
export async function main(argv: readonly string[], io: RunIo, signal?: AbortSignal): Promise<number> {
  let args: RunArgs;
  try {
    args = parseArgs(argv);
  } catch (error) {
    io.err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    io.out(USAGE);
    return 0;
  }
  const seed = args.seed ?? randomSeed();
  io.out(`chaos: seed ${seed} (replay with --seed ${seed})`);
  if (args.backend !== 'zmq') return mainLease(args, args.backend, seed, io, signal);
  let run;
  try {
    run = await runChaos({
      seed,
      durationMs: args.durationMs,
      nodes: args.nodes,
      heartbeatInterval: args.heartbeatInterval,
      heartbeatTimeout: args.heartbeatTimeout,
      transport: args.transport,
      priorities: args.priorities,
      log: args.verbose ? io.out : (line) => (line.startsWith('  +') ? undefined : io.out(line)),
      ...(signal !== undefined ? { signal } : {}),
    });
  } catch (error) {
    io.err(`chaos: the run failed: ${(error as Error).stack ?? String(error)}`);
    return 2;
  }
  const report = checkHistory(run.history, args.bounds);
  if (args.historyFile !== undefined) {
    writeFileSync(args.historyFile, JSON.stringify({ endpoint: run.endpoint, history: run.history }, null, 1));
    io.out(`chaos: history written to ${args.historyFile}`);
  }
  io.out('');
  io.out(
    formatSummary(
      {
        seed,
        endpoint: run.endpoint,
        nodes: args.nodes,
        durationMs: args.durationMs,
        heartbeatInterval: args.heartbeatInterval,
        heartbeatTimeout: args.heartbeatTimeout,
        bounds: args.bounds,
        ...(run.history.injectorStalls !== undefined ? { injectorStalls: run.history.injectorStalls } : {}),
      },
      report,
    ),
  );
  return report.ok ? 0 : 1;
}

/** `--backend etcd|postgres|redis`: the lease injector, the same checker in lease mode. */
async function mainLease(args: RunArgs, backend: LeaseBackend, seed: number, io: RunIo, signal: AbortSignal | undefined): Promise<number> {
  let run;
  try {
    run = await runLeaseChaos({
      backend,
      seed,
      durationMs: args.durationMs,
      nodes: args.nodes,
      ...(args.serverFaults ? { serverFaults: true } : {}),
      log: io.out,
      ...(signal !== undefined ? { signal } : {}),
    });
  } catch (error) {
    io.err(`chaos: the run failed: ${(error as Error).stack ?? String(error)}`);
    return 2;
  }
  const report = checkHistory(run.history, args.bounds);
  if (args.historyFile !== undefined) {
    writeFileSync(args.historyFile, JSON.stringify({ endpoint: run.server, history: run.history }, null, 1));
    io.out(`chaos: history written to ${args.historyFile}`);
  }
  io.out('');
  io.out(
    formatSummary(
      { seed, endpoint: run.server, nodes: args.nodes, durationMs: args.durationMs, heartbeatInterval: run.profile.interval, heartbeatTimeout: run.profile.lease, bounds: args.bounds },
      report,
    ),
  );
  return report.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const controller = new AbortController();
  // Ctrl-C ends the injection early; the run still checks, prints and kills what it started.
  process.once('SIGINT', () => controller.abort());
  main(process.argv.slice(2), { out: (l) => console.log(l), err: (l) => console.error(l) }, controller.signal).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 2;
    },
  );
}
