/**
 * The same two Redis measurements as `redis.ts` — graceful handover and crash failover, 3 node
 * processes on a private `redis-server`, chained trials — for an existing npm package,
 * `ts-safe-redis-leader` (the most used Redis leader-election package on npm that runs on
 * ioredis), so that one bench run prints both side by side.
 *
 * Comparable settings: the package's `ttl` = our `leaseTTL` (1000 ms) and its `wait` (the
 * standby's polling interval) = our `tickInterval` (100 ms). What the package fixes itself: the
 * leader renews every `ttl / 2` (500 ms; ours refreshes every tick) and nothing is jittered. The
 * same ioredis 6 client, one host clock, the same instants: `closeCalled` (in the child, right
 * before `shutdown()`) or the SIGKILL (in this process) → the successor's `elected` event (our
 * `onStart`). Nodes run in `harness/safe-redis-leader-node.ts`, driven like ours.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisAvailability } from '../../harness/redis-server.js';
import { Chain, runTrials, summarize, type Kind, type RedisBenchOptions, type RedisBenchResult, type Trial } from './redis.js';

const CHILD = fileURLToPath(new URL('../../harness/safe-redis-leader-node.ts', import.meta.url));
const PACKAGE = 'ts-safe-redis-leader';

function packageVersion(): string {
  try {
    const url = new URL(`../../node_modules/${PACKAGE}/package.json`, import.meta.url);
    return String((JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown }).version ?? '?');
  } catch {
    return '?';
  }
}

export const REDIS_COMPARE_SETTINGS = {
  package: PACKAGE,
  nodes: 3,
  /** The package's `ttl`, like our `leaseTTL`. */
  ttl: 1000,
  /** The package's `wait` (standbys poll `SET NX` this often), like our `tickInterval`. */
  wait: 100,
  /** Fixed by the package: the leader renews every ttl / 2. */
  renewEvery: 500,
  client: 'ioredis 6 (the same as failover-watch), options from the package README',
} as const;

/** Runs both measurements for the package; one result per measurement. */
export async function redisCompareScenarios(opts: RedisBenchOptions): Promise<RedisBenchResult[]> {
  const progress = opts.progress ?? (() => {});
  const s = REDIS_COMPARE_SETTINGS;
  const version = packageVersion();
  const label = `${PACKAGE} ${version}, 3 nodes, ttl ${s.ttl} ms, wait ${s.wait} ms`;
  const meta: Record<Kind, { name: string; description: string; metric: string }> = {
    graceful: {
      name: 'redis-compare-graceful-handover',
      description: `${PACKAGE}: leader shutdown() → successor elected, 1 leader + 2 standbys, chained`,
      metric: "successor's elected − old leader's closeCalled (before shutdown())",
    },
    crash: {
      name: 'redis-compare-crash-failover',
      description: `${PACKAGE}: SIGKILL of the leader → successor elected, 1 leader + 2 standbys, chained`,
      metric: "successor's elected − SIGKILL sent",
    },
  };
  const available = redisAvailability();
  if (!available.available) {
    return Object.values(meta).map((m) => ({
      name: m.name,
      description: m.description,
      settings: { ...s, trials: opts.trials },
      rows: [],
      failures: [{ row: m.name, trial: 0, cause: available.reason }],
      trials: [],
      notes: [available.reason],
      durationMs: 0,
    }));
  }

  const results: RedisBenchResult[] = [];
  const server = await RedisServer.start();
  try {
    for (const kind of ['graceful', 'crash'] as const) {
      const m = meta[kind];
      const started = performance.now();
      const chain = new Chain(
        { project: uniqueProject(`cmp-${kind}`), redisUrl: server.url, leaseTTL: s.ttl, tickInterval: s.wait },
        CHILD,
        PACKAGE,
      );
      let trials: Trial[] = [];
      try {
        trials = await runTrials(kind, chain, opts.trials, progress);
      } finally {
        await chain.group.stopAll();
      }
      const failures = trials.filter((t) => t.cause !== undefined).map((t) => ({ row: m.name, trial: t.trial, cause: t.cause as string }));
      const samples = trials.filter((t) => t.cause === undefined && t.latencyMs !== undefined).map((t) => t.latencyMs as number);
      results.push({
        name: m.name,
        description: m.description,
        settings: { ...s, version, trials: opts.trials, redis: available.version },
        rows: [
          {
            kind: 'latency',
            scenario: m.name,
            label,
            metric: m.metric,
            failures: failures.length,
            target: undefined,
            summary: summarize(samples),
            samples,
          },
        ],
        failures,
        trials,
        notes: [`winners: ${[...new Set(trials.map((t) => t.to))].length} distinct nodes`],
        durationMs: performance.now() - started,
      });
    }
  } finally {
    await server.kill();
  }
  return results;
}

/** How to read the comparison (printed under the table). */
const EXPLANATION = [
  `settings: ${PACKAGE} ttl ${REDIS_COMPARE_SETTINGS.ttl} ms, wait ${REDIS_COMPARE_SETTINGS.wait} ms (renews every ${REDIS_COMPARE_SETTINGS.renewEvery} ms, no jitter); failover-watch leaseTTL 1000 ms, tickInterval 100 ms ±20 % (refreshes every tick), maxDrift 500 ms`,
  `graceful: ${PACKAGE}'s shutdown() deletes the key but tells nobody: a standby finds it free at its next poll (up to wait); failover-watch publishes the release and a standby acquires at once`,
  `crash: both wait for the lease to expire, which happens ttl after the last renewal; ${PACKAGE} renews every ttl/2, so at a random crash its lease is on average older and expires sooner (500-1000 ms after the crash) than failover-watch's, refreshed every tick (about 880-1000 ms). The price: a renewal lapse of ttl/2 loses the lease, and (read from its source, not measured) a leader whose renewal errors stops renewing without ever emitting 'demoted' nor stepping down by itself, where failover-watch steps down after maxDrift`,
];

/** The comparison as one runner scenario (`{ name, description, run(ctx) }`): both rows. */
export const redisCompareScenario = {
  name: 'redis-compare',
  description: `Redis leader election with the npm package ${PACKAGE}, the same measurements as 'redis'`,
  async run(ctx: { readonly trials: number; readonly progress: (line: string) => void }): Promise<RedisBenchResult> {
    const started = performance.now();
    const parts = await redisCompareScenarios({ trials: ctx.trials, progress: ctx.progress });
    return {
      name: 'redis-compare',
      description: this.description,
      settings: { ...REDIS_COMPARE_SETTINGS, version: packageVersion(), trials: ctx.trials },
      rows: parts.flatMap((p) => p.rows),
      failures: parts.flatMap((p) => p.failures),
      trials: parts.flatMap((p) => p.trials),
      notes: [...EXPLANATION, ...parts.flatMap((p) => p.notes.map((n) => `${p.name}: ${n}`))],
      durationMs: performance.now() - started,
    };
  },
};
