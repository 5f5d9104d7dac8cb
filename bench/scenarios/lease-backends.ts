/**
 * lease-backends: the three cross-host backends side by side in one run. For Redis, etcd and
 * PostgreSQL, each against a private server this scenario starts on a free loopback port:
 *
 * - crash takeover: SIGKILL of the leader's process (sent from this process) → a standby's
 *   `onPromote` (`onStart` for Redis);
 * - graceful handover: the leader's `shutdown()` (`close()` for Redis), stamped by the leader
 *   right before the call → the next `onPromote`.
 *
 * Three node processes per backend (1 leader + 2 standbys), chained: after every trial the departed
 * node is replaced by a fresh process, so each trial starts from the same shape. Every instant
 * is on the run's one host clock (`hostNow` in harness/child-runtime.ts). Redis nodes are
 * harness/redis-node.ts, etcd and PostgreSQL nodes harness/lease-node.ts, all run through tsx.
 *
 * Targets (issue 18, loopback): PostgreSQL crash takeover p99 < 50 ms; graceful handover
 * p99 < 20 ms for every backend; etcd crash takeover within leaseTTL + one keepalive interval;
 * Redis crash takeover within leaseTTL + one tick (as the `redis` scenario). The host's floor
 * under a crash takeover, the kernel's teardown of a SIGKILLed node process (bench/lib/host-floor.ts),
 * is measured in the same run and shown as its own row: no crash takeover can beat it, and it
 * is the part of PostgreSQL's figure that the library does not control.
 *
 * @module
 */
import { wallNow } from '../../harness/cluster.js';
import { etcdAvailability, startEtcd, type EtcdCluster } from '../../harness/etcd-server.js';
import type { LeaseNodeConfig } from '../../harness/lease-node.js';
import { PostgresServer, postgresBinDir } from '../../harness/postgres-server.js';
import { uniqueProject, type RedisNodeEvent } from '../../harness/redis-cluster.js';
import { RedisServer, redisAvailability } from '../../harness/redis-server.js';
import { fileURLToPath } from 'node:url';
import { measureTeardown } from '../lib/host-floor.js';
import type { BenchContext, LatencyRow, Scenario, ScenarioResult, Target, TrialFailure } from '../scenario.js';
import { rounded, summarize } from '../stats.js';
import { Chain, REDIS_BENCH_SETTINGS } from './redis.js';

const LEASE_NODE = fileURLToPath(new URL('../../harness/lease-node.ts', import.meta.url));

export const LEASE_BENCH_SETTINGS = {
  nodes: 3,
  trialTimeout: 10_000,
  gracefulTarget: 20,
  postgresCrashTarget: 50,
  floorTrials: 10,
  redis: { leaseTTL: REDIS_BENCH_SETTINGS.leaseTTL, maxDrift: REDIS_BENCH_SETTINGS.maxDrift, tickInterval: REDIS_BENCH_SETTINGS.tickInterval },
  etcd: { leaseTTL: 2000, keepAliveInterval: 500, maxDrift: 1000 },
  // The library's defaults (src/postgres/options.ts).
  postgres: {},
} as const;

type Backend = 'redis' | 'etcd' | 'postgres';
type Kind = 'crash' | 'graceful';

interface LeaseTrial {
  readonly backend: Backend;
  readonly kind: Kind;
  readonly trial: number;
  readonly from: string;
  readonly to: string | undefined;
  readonly latencyMs: number | undefined;
  readonly reason: string | undefined;
  readonly epoch: number | undefined;
  readonly cause: string | undefined;
}

/** The successor's promotion event: `start` from redis-node.ts, `promote` from lease-node.ts. */
const promoted = (backend: Backend) => (e: RedisNodeEvent) => e.type === (backend === 'redis' ? 'start' : 'promote');
const epochOf = (e: RedisNodeEvent): number | undefined => Number(e.revision ?? e.epoch);

async function runTrials(backend: Backend, kind: Kind, chain: Chain, trials: number, progress: (l: string) => void): Promise<LeaseTrial[]> {
  const s = LEASE_BENCH_SETTINGS;
  const out: LeaseTrial[] = [];
  for (let i = 1; i <= trials; i++) {
    let trial: LeaseTrial;
    try {
      const leader = await chain.fill(s.nodes);
      const standbys = chain.alive().filter((n) => n !== leader);
      const next = Promise.any(standbys.map((n) => n.next(promoted(backend), s.trialTimeout, 'onPromote').then((e) => ({ n, e }))));
      let from: number;
      if (kind === 'graceful') {
        const ack = leader.next((e) => e.type === 'closeCalled', s.trialTimeout, 'closeCalled');
        leader.send({ cmd: 'close' });
        from = (await ack).at;
      } else {
        from = wallNow();
        leader.kill('SIGKILL');
      }
      const w = await next;
      const primaries = chain.group.primaries().filter((n) => n !== leader);
      trial = {
        backend,
        kind,
        trial: i,
        from: leader.id,
        to: w.n.id,
        latencyMs: w.e.at - from,
        reason: String(w.e.reason),
        epoch: epochOf(w.e),
        cause: primaries.length > 1 ? `two primaries after the trial: ${primaries.map((n) => n.id).join(', ')}` : undefined,
      };
      await leader.exited;
    } catch (error) {
      trial = { backend, kind, trial: i, from: '?', to: undefined, latencyMs: undefined, reason: undefined, epoch: undefined, cause: String(error).slice(0, 300) };
    }
    out.push(trial);
    if (i % 5 === 0 || i === trials) progress(`  ${backend} ${kind}: ${i}/${trials} trials, ${out.filter((t) => t.cause !== undefined).length} failed`);
  }
  return out;
}

interface ServerHandle {
  readonly url: string;
  readonly version: string;
  stop(): Promise<void>;
}

async function startServer(backend: Backend): Promise<ServerHandle | string> {
  if (backend === 'redis') {
    const a = redisAvailability();
    if (!a.available) return a.reason;
    const server = await RedisServer.start();
    return { url: server.url, version: a.version, stop: () => server.kill() };
  }
  if (backend === 'etcd') {
    const a = etcdAvailability();
    if (!a.available) return a.reason;
    const cluster: EtcdCluster = await startEtcd(1);
    return { url: cluster.hosts.join(','), version: a.version, stop: () => cluster.stop() };
  }
  const bin = postgresBinDir();
  if (bin === undefined) return 'initdb/postgres not found (apt-get install -y postgresql, or set PG_BIN)';
  const server = await PostgresServer.start();
  const version = await server.query<{ v: string }>('SHOW server_version').then(
    (rows) => `PostgreSQL ${rows.map((r) => r.v).join('')}`,
    (error: unknown) => `PostgreSQL (version unknown: ${String(error).slice(0, 100)})`,
  );
  return { url: server.url, version, stop: () => server.destroy() };
}

function chainFor(backend: Backend, kind: Kind, url: string): Chain {
  const project = uniqueProject(`bench-${backend}-${kind}`).replace(/[^A-Za-z0-9_.-]/g, '_');
  if (backend === 'redis') return new Chain({ project, redisUrl: url, ...LEASE_BENCH_SETTINGS.redis }, undefined, 'redis');
  const base: Omit<LeaseNodeConfig, 'nodeId'> = { project, redisUrl: url, backend, options: LEASE_BENCH_SETTINGS[backend] };
  return new Chain(base, LEASE_NODE, backend);
}

function crashTarget(backend: Backend): Target {
  const s = LEASE_BENCH_SETTINGS;
  if (backend === 'postgres') return { stat: 'p99', below: s.postgresCrashTarget, text: `p99 < ${s.postgresCrashTarget} ms` };
  if (backend === 'etcd') {
    const b = s.etcd.leaseTTL + s.etcd.keepAliveInterval;
    return { stat: 'p99', below: b, inclusive: true, text: `p99 <= leaseTTL + keepalive (${b} ms)` };
  }
  const b = s.redis.leaseTTL + s.redis.tickInterval * 1.2;
  return { stat: 'p99', below: b, text: `p99 < leaseTTL + tick (${b} ms)` };
}

/** The reasons a successor may give for each kind of trial. */
const EXPECTED: Readonly<Record<Backend, Readonly<Record<Kind, readonly string[]>>>> = {
  redis: { crash: ['expired'], graceful: ['handover'] },
  etcd: { crash: ['expired'], graceful: ['handover'] },
  postgres: { crash: ['vacant'], graceful: ['handover', 'vacant'] },
};

export const leaseBackends: Scenario = {
  name: 'lease-backends',
  description: 'Redis, etcd and PostgreSQL side by side: crash takeover and graceful handover, p50/p99',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const rows: LatencyRow[] = [];
    const failures: TrialFailure[] = [];
    const allTrials: LeaseTrial[] = [];
    const notes: string[] = [];
    const versions: Record<string, string> = {};

    ctx.progress('  host floor: SIGKILL of a bare node process -> its socket closed');
    const floor = await measureTeardown(0, ctx.quick ? 3 : LEASE_BENCH_SETTINGS.floorTrials);
    const floorSummary = summarize(floor.samples);
    rows.push({
      kind: 'latency',
      scenario: 'lease-backends',
      label: 'host floor: kill -> socket closed',
      metric: 'SIGKILL of a bare node + zeromq process → a peer sees its TCP connection close',
      failures: 0,
      target: undefined,
      summary: floorSummary === undefined ? undefined : rounded(floorSummary),
      samples: floor.samples,
    });

    for (const backend of ['redis', 'etcd', 'postgres'] as const) {
      let server: ServerHandle | string;
      try {
        server = await startServer(backend);
      } catch (error) {
        server = `${backend} server did not start: ${String(error).slice(0, 300)}`;
      }
      if (typeof server === 'string') {
        failures.push({ row: backend, trial: 0, cause: server });
        notes.push(`${backend}: not measured: ${server}`);
        continue;
      }
      versions[backend] = server.version;
      try {
        for (const kind of ['crash', 'graceful'] as const) {
          const chain = chainFor(backend, kind, server.url);
          let trials: LeaseTrial[] = [];
          try {
            trials = await runTrials(backend, kind, chain, ctx.trials, ctx.progress);
          } finally {
            await chain.group.stopAll();
          }
          allTrials.push(...trials);
          const label = `${backend} ${kind}`;
          const bad = trials
            .map((t) => ({ t, cause: t.cause ?? (t.reason !== undefined && !EXPECTED[backend][kind].includes(t.reason) ? `took over with reason '${t.reason}'` : undefined) }))
            .filter((x) => x.cause !== undefined);
          for (const b of bad) failures.push({ row: label, trial: b.t.trial, cause: b.cause as string });
          const failed = new Set(bad.map((b) => b.t.trial));
          const samples = trials.filter((t) => !failed.has(t.trial) && t.latencyMs !== undefined).map((t) => t.latencyMs as number);
          const summary = summarize(samples);
          rows.push({
            kind: 'latency',
            scenario: 'lease-backends',
            label,
            metric: kind === 'crash' ? "SIGKILL of the leader → a standby's onPromote" : "leader's shutdown() called → the next onPromote",
            failures: bad.length,
            target: kind === 'crash' ? crashTarget(backend) : { stat: 'p99', below: LEASE_BENCH_SETTINGS.gracefulTarget, text: `p99 < ${LEASE_BENCH_SETTINGS.gracefulTarget} ms` },
            summary: summary === undefined ? undefined : rounded(summary),
            samples,
          });
          const epochs = trials.map((t) => t.epoch).filter((e): e is number => e !== undefined && Number.isFinite(e));
          const growing = epochs.every((e, i) => i === 0 || e > (epochs[i - 1] as number));
          const reasons = [...new Set(trials.map((t) => t.reason).filter((r) => r !== undefined))].join(', ');
          notes.push(`${label}: epochs ${growing ? 'strictly grew' : `did NOT strictly grow: ${epochs.join(',')}`}; successors' reasons: ${reasons || 'none'}`);
          if (backend === 'postgres' && kind === 'crash' && summary !== undefined && floorSummary !== undefined) {
            notes.push(`postgres crash p50 is ${(summary.p50 - floorSummary.p50).toFixed(1)} ms above the host floor's p50 (${floorSummary.p50.toFixed(1)} ms)`);
          }
        }
      } finally {
        await server.stop();
      }
    }
    return {
      name: this.name,
      description: this.description,
      settings: { ...LEASE_BENCH_SETTINGS, trials: ctx.trials, versions },
      rows,
      failures,
      trials: allTrials,
      notes,
      durationMs: performance.now() - started,
    };
  },
};
