/**
 * Redis lease election latency: graceful handover (`close()` of the leader → the successor's
 * `onStart`) and crash failover (SIGKILL of the leader → the successor's `onStart`), with three
 * node processes on a private `redis-server`, chained over `trials` trials each.
 *
 * Instants come from the run's one host clock (`hostNow` in harness/child-runtime.ts), in the
 * child for `closeCalled` and `start`, in this process for the SIGKILL. After every trial the departed
 * node is replaced by a fresh process, so every trial starts from 1 leader + 2 standbys.
 *
 * The result objects have the shape of `ScenarioResult` in `bench/scenario.ts` (declared here
 * structurally, so this file does not depend on the runner): `redisScenarios(opts)` returns one per
 * measurement; `redisScenario` is the same as a single runner scenario whose rows are both.
 *
 * @module
 */
import { wallNow } from '../../harness/cluster.js';
import { RedisNodes, uniqueProject, type RedisNodeEvent, type RedisNodeProcess } from '../../harness/redis-cluster.js';
import type { RedisNodeConfig } from '../../harness/redis-node.js';
import { RedisServer, redisAvailability } from '../../harness/redis-server.js';

/** Options of {@link redisScenarios}. */
export interface RedisBenchOptions {
  /** Trials per measurement (≥ 50 for the published figures). */
  readonly trials: number;
  /** Progress lines (stderr in the runner). */
  readonly progress?: (line: string) => void;
}

export interface RedisLatencySummary {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export interface RedisLatencyRow {
  readonly kind: 'latency';
  readonly scenario: string;
  readonly label: string;
  readonly metric: string;
  readonly failures: number;
  readonly target: { readonly stat: 'p99'; readonly below: number; readonly text: string } | undefined;
  readonly summary: RedisLatencySummary | undefined;
  readonly samples: readonly number[];
}

/** Same shape as the runner's `ScenarioResult`. */
export interface RedisBenchResult {
  readonly name: string;
  readonly description: string;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly rows: readonly RedisLatencyRow[];
  readonly failures: ReadonlyArray<{ readonly row: string; readonly trial: number; readonly cause: string }>;
  readonly trials: readonly unknown[];
  readonly notes: readonly string[];
  readonly durationMs: number;
}

export const REDIS_BENCH_SETTINGS = {
  nodes: 3,
  leaseTTL: 1000,
  maxDrift: 500,
  tickInterval: 100,
  readyTimeout: 20_000,
  trialTimeout: 5000,
  gracefulTarget: 20,
} as const;

const wall = wallNow;

/** Nearest-rank summary (the runner's definition), rounded to 2 decimals. */
export function summarize(samples: readonly number[]): RedisLatencySummary | undefined {
  if (samples.length === 0) return undefined;
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.max(1, Math.ceil((p / 100) * s.length)) - 1] as number;
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    n: s.length,
    min: r(s[0] as number),
    p50: r(at(50)),
    p95: r(at(95)),
    p99: r(at(99)),
    max: r(s[s.length - 1] as number),
    mean: r(s.reduce((a, b) => a + b, 0) / s.length),
  };
}

export type Kind = 'graceful' | 'crash';

export interface Trial {
  readonly kind: Kind;
  readonly trial: number;
  readonly from: string;
  readonly to: string | undefined;
  readonly latencyMs: number | undefined;
  readonly reason: string | undefined;
  readonly revision: number | undefined;
  readonly cause: string | undefined;
}

/**
 * Keeps `nodes` node processes alive on one project, replacing the ones that leave. `script`
 * runs another election implementation behind the same child protocol (see redis-compare.ts).
 */
export class Chain {
  readonly group = new RedisNodes();
  #seq = 0;
  readonly #base: Omit<RedisNodeConfig, 'nodeId'>;
  readonly #script: string | undefined;
  /** Prefix of progress lines. */
  readonly label: string;

  constructor(base: Omit<RedisNodeConfig, 'nodeId'>, script?: string, label = 'redis') {
    this.#base = base;
    this.#script = script;
    this.label = label;
  }

  spawn(): RedisNodeProcess {
    return this.group.spawn({ ...this.#base, nodeId: `n${++this.#seq}` }, undefined, this.#script);
  }

  alive(): RedisNodeProcess[] {
    return this.group.nodes.filter((n) => n.alive);
  }

  /** Fills up to `count` live nodes and waits for them and for exactly one leader. */
  async fill(count: number): Promise<RedisNodeProcess> {
    const fresh: RedisNodeProcess[] = [];
    while (this.alive().length < count) fresh.push(this.spawn());
    await Promise.all(fresh.map((n) => n.waitFor((e) => e.type === 'ready', REDIS_BENCH_SETTINGS.readyTimeout, 'ready')));
    const leaders = this.group.primaries();
    if (leaders.length === 1) return leaders[0] as RedisNodeProcess;
    return Promise.any(
      this.alive().map((n) => n.waitFor((e) => e.type === 'roleChanged' && e.to === 'primary' && n.alive, REDIS_BENCH_SETTINGS.trialTimeout).then(() => n)),
    );
  }
}

const isStart = (e: RedisNodeEvent) => e.type === 'start';

/** `trials` chained trials of one kind: each from 1 leader + 2 standbys, the departed node replaced. */
export async function runTrials(kind: Kind, chain: Chain, trials: number, progress: (l: string) => void): Promise<Trial[]> {
  const out: Trial[] = [];
  for (let i = 1; i <= trials; i++) {
    let trial: Trial;
    try {
      const leader = await chain.fill(REDIS_BENCH_SETTINGS.nodes);
      const standbys = chain.alive().filter((n) => n !== leader);
      const next = Promise.any(
        standbys.map((n) => n.next(isStart, REDIS_BENCH_SETTINGS.trialTimeout, 'onStart').then((e) => ({ n, e }))),
      );
      let from: number;
      if (kind === 'graceful') {
        const ack = leader.next((e) => e.type === 'closeCalled', REDIS_BENCH_SETTINGS.trialTimeout, 'closeCalled');
        leader.send({ cmd: 'close' });
        from = (await ack).at;
      } else {
        from = wall();
        leader.kill('SIGKILL');
      }
      const w = await next;
      const multiple = chain.group.primaries().filter((n) => n !== leader);
      trial = {
        kind,
        trial: i,
        from: leader.id,
        to: w.n.id,
        latencyMs: w.e.at - from,
        reason: String(w.e.reason),
        revision: Number(w.e.revision),
        cause: multiple.length > 1 ? `two primaries after the trial: ${multiple.map((n) => n.id).join(', ')}` : undefined,
      };
      await leader.exited;
    } catch (error) {
      trial = { kind, trial: i, from: '?', to: undefined, latencyMs: undefined, reason: undefined, revision: undefined, cause: String(error).slice(0, 300) };
    }
    out.push(trial);
    if (i % 10 === 0 || i === trials) progress(`  ${chain.label} ${kind}: ${i}/${trials} trials, ${out.filter((t) => t.cause !== undefined).length} failed`);
  }
  return out;
}

/**
 * Runs both Redis measurements on a private redis-server and returns one result per measurement.
 * When redis-server is missing, the results carry no samples and say why in `failures`.
 */
export async function redisScenarios(opts: RedisBenchOptions): Promise<RedisBenchResult[]> {
  const progress = opts.progress ?? (() => {});
  const s = REDIS_BENCH_SETTINGS;
  const available = redisAvailability();
  const results: RedisBenchResult[] = [];
  const meta = {
    graceful: {
      name: 'redis-graceful-handover',
      description: 'Redis: leader close() → successor onStart, 1 leader + 2 standbys, chained',
      metric: "successor's onStart − old leader's closeCalled",
      expected: 'handover',
      target: { stat: 'p99' as const, below: s.gracefulTarget, text: `p99 < ${s.gracefulTarget} ms` },
    },
    crash: {
      name: 'redis-crash-failover',
      description: 'Redis: SIGKILL of the leader → successor onStart, 1 leader + 2 standbys, chained',
      metric: "successor's onStart − SIGKILL sent",
      expected: 'expired',
      target: {
        stat: 'p99' as const,
        below: s.leaseTTL + s.tickInterval * 1.2,
        text: `p99 < leaseTTL + tick (${s.leaseTTL + s.tickInterval * 1.2} ms)`,
      },
    },
  };
  if (!available.available) {
    for (const m of Object.values(meta)) {
      results.push({
        name: m.name,
        description: m.description,
        settings: { ...s, trials: opts.trials },
        rows: [],
        failures: [{ row: m.name, trial: 0, cause: available.reason }],
        trials: [],
        notes: [available.reason],
        durationMs: 0,
      });
    }
    return results;
  }

  const server = await RedisServer.start();
  try {
    for (const kind of ['graceful', 'crash'] as const) {
      const m = meta[kind];
      const started = performance.now();
      const chain = new Chain({
        project: uniqueProject(`bench-${kind}`),
        redisUrl: server.url,
        leaseTTL: s.leaseTTL,
        maxDrift: s.maxDrift,
        tickInterval: s.tickInterval,
      });
      let trials: Trial[] = [];
      try {
        trials = await runTrials(kind, chain, opts.trials, progress);
      } finally {
        await chain.group.stopAll();
      }
      const failures = trials
        .map((t) => ({ t, cause: t.cause ?? (t.reason !== m.expected ? `took over with reason '${t.reason}', not '${m.expected}'` : undefined) }))
        .filter((x) => x.cause !== undefined)
        .map((x) => ({ row: m.name, trial: x.t.trial, cause: x.cause as string }));
      const failed = new Set(failures.map((f) => f.trial));
      const samples = trials.filter((t) => !failed.has(t.trial) && t.latencyMs !== undefined).map((t) => t.latencyMs as number);
      const revisions = trials.map((t) => t.revision).filter((r): r is number => r !== undefined);
      const growing = revisions.every((r, i) => i === 0 || r === (revisions[i - 1] as number) + 1);
      results.push({
        name: m.name,
        description: m.description,
        settings: { ...s, trials: opts.trials, redis: available.version },
        rows: [
          {
            kind: 'latency',
            scenario: m.name,
            label: `3 nodes, leaseTTL ${s.leaseTTL} ms, tick ${s.tickInterval} ms`,
            metric: m.metric,
            failures: failures.length,
            target: m.target,
            summary: summarize(samples),
            samples,
          },
        ],
        failures,
        trials,
        notes: [
          `revisions ${growing ? 'grew by exactly one per trial' : `did NOT grow by one per trial: ${revisions.join(',')}`}`,
          `winners: ${[...new Set(trials.map((t) => t.to))].length} distinct nodes`,
        ],
        durationMs: performance.now() - started,
      });
    }
  } finally {
    await server.kill();
  }
  return results;
}

/** The same measurements as one runner scenario (`{ name, description, run(ctx) }`). */
export const redisScenario = {
  name: 'redis',
  description: 'Redis lease election: graceful handover and crash failover latency',
  async run(ctx: { readonly trials: number; readonly progress: (line: string) => void }): Promise<RedisBenchResult> {
    const started = performance.now();
    const parts = await redisScenarios({ trials: ctx.trials, progress: ctx.progress });
    return {
      name: 'redis',
      description: 'Redis lease election: graceful handover and crash failover latency',
      settings: { ...REDIS_BENCH_SETTINGS, trials: ctx.trials },
      rows: parts.flatMap((p) => p.rows),
      failures: parts.flatMap((p) => p.failures),
      trials: parts.flatMap((p) => p.trials),
      notes: parts.flatMap((p) => p.notes.map((n) => `${p.name}: ${n}`)),
      durationMs: performance.now() - started,
    };
  },
};
