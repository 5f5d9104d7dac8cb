/**
 * failover-watch/metrics: Prometheus metrics of a Watcher or a Redis election, registered on a
 * prom-client registry the application passes in.
 *
 * prom-client is an optional peer dependency: only this entry loads it, so an application that
 * never imports `failover-watch/metrics` never loads it. Values are read from `status()` and
 * `health()` on each scrape (no timers); failovers and takeover times are counted from the
 * `roleChanged` and `primaryLost` events from registration on, so register before `start()`.
 *
 * The metrics (prefix `failover_watch_` by default):
 *
 * | name | type | labels | what |
 * |---|---|---|---|
 * | `role` | gauge | `role` | 1 for the current role (`starting`, `secondary`, `primary`, `stopped`), 0 for the others |
 * | `epoch` | gauge | | own epoch while primary, otherwise the highest known (Redis: the revision) |
 * | `heartbeats_sent_total` | counter | | heartbeats published (Redis: lease operations) |
 * | `heartbeats_seen_total` | counter | | heartbeats received from a primary (ZeroMQ only) |
 * | `failovers_total` | counter | `cause` | times this node went from secondary to primary, by the reason of that change |
 * | `last_takeover_seconds` | gauge | | last takeover: from `primaryLost` to primary (ZeroMQ only) |
 * | `last_takeover_timestamp_seconds` | gauge | | when this node last became primary (Unix seconds) |
 * | `dropped_messages_total` | counter | `reason` | invalid messages dropped, by reason (ZeroMQ only) |
 * | `primary_suspected` | gauge | | 1 while this secondary considers the primary lost (ZeroMQ only) |
 * | `healthy` | gauge | | 1 while `health().ok` (what `/healthz` answers 200 for) |
 *
 * @example
 * import { Registry } from 'prom-client';
 * import { Watcher } from 'failover-watch';
 * import { registerMetrics } from 'failover-watch/metrics';
 *
 * const registry = new Registry();
 * const watcher = new Watcher({ endpoint: 'ipc://@my-app' });
 * const metrics = registerMetrics(watcher, { registry });
 * await watcher.start();
 * // GET /metrics: res.end(await registry.metrics())
 * // on shutdown: metrics.unregister()
 *
 * @module
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { FailoverError, InvalidOptionError } from './errors.js';
import type { Health } from './health.js';
import type { WatcherStatus } from './watcher.js';
import type { ClusterStatus } from './redis.js';
import type { Election, ElectionStatusCore } from './election/contract.js';

export type { Health } from './health.js';

/**
 * What `registerMetrics` accepts: any election of the contract (the ZeroMQ Watcher, the Redis
 * `Cluster`, the etcd and PostgreSQL elections). Backend-specific series (heartbeats, dropped
 * messages) appear only for the backends that have them.
 */
export type MetricsSource = Election;

/** Options of {@link registerMetrics}. */
export interface MetricsOptions {
  /** The prom-client registry to register on (the application's, e.g. prom-client's `register`). */
  readonly registry: Registry;
  /**
   * Prepended to every metric name; must match `[a-zA-Z_:][a-zA-Z0-9_:]*`. Two elections on one
   * registry need different prefixes (their names would clash otherwise).
   * @default 'failover_watch_'
   */
  readonly prefix?: string;
  /**
   * Constant labels added to every sample, e.g. `{ cluster: 'billing' }`. Names must match
   * `[a-zA-Z_][a-zA-Z0-9_]*` and not be `role`, `cause` or `reason`.
   * @default {}
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/** What {@link registerMetrics} returns. */
export interface MetricsHandle {
  /** The names registered, prefix included. */
  readonly names: readonly string[];
  /** Removes the metrics from the registry and stops listening to the election. Idempotent. */
  unregister(): void;
}

const ROLES = ['starting', 'secondary', 'primary', 'stopped'] as const;
/** The Watcher's takeover causes, exported at 0 from the start so rate() sees the first one. */
const WATCHER_CAUSES = ['disconnect', 'shutdown', 'silence'] as const;
const RESERVED_LABELS = new Set(['role', 'cause', 'reason']);

type AnyStatus = ElectionStatusCore;
type Sample = (labels: Record<string, string>, value: number) => void;
interface Emitter {
  on(event: string, fn: (e: { from?: string; to?: string; reason?: string; at: number }) => void): unknown;
  off(event: string, fn: (e: { from?: string; to?: string; reason?: string; at: number }) => void): unknown;
}

const isWatcherStatus = (st: AnyStatus): st is WatcherStatus => st.backend === 'zmq' && 'dropped' in st;
const isRedisStatus = (st: AnyStatus): st is ClusterStatus => st.backend === 'redis';

/**
 * Registers the election's metrics on `options.registry`; they are read on each scrape. Throws
 * `InvalidOptionError` for a bad prefix or label, and `ERR_FAILOVER_INVALID_OPTION` when a name
 * is already registered (nothing is left registered then).
 *
 * @example
 * const handle = registerMetrics(watcher, { registry, labels: { app: 'billing' } });
 */
export function registerMetrics(election: MetricsSource, options: MetricsOptions): MetricsHandle {
  const registry = options?.registry as Registry | undefined;
  if (registry === undefined || registry === null || typeof registry.registerMetric !== 'function') {
    throw new InvalidOptionError('registry', 'a prom-client Registry', registry);
  }
  const prefix = options.prefix ?? 'failover_watch_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new InvalidOptionError('prefix', 'a metric name prefix matching [a-zA-Z_:][a-zA-Z0-9_:]*', prefix);
  }
  const constant: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.labels ?? {})) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || name.startsWith('__') || RESERVED_LABELS.has(name)) {
      throw new InvalidOptionError(`labels.${name}`, 'a label name matching [a-zA-Z_][a-zA-Z0-9_]*, not role, cause or reason', name);
    }
    if (typeof value !== 'string') throw new InvalidOptionError(`labels.${name}`, 'a string', value);
    constant[name] = value;
  }
  const constantNames = Object.keys(constant);
  const isWatcher = isWatcherStatus(election.status());

  // Counted from the events: failovers by cause, and when the last takeover began and ended.
  const failovers = new Map<string, number>(isWatcher ? WATCHER_CAUSES.map((c) => [c, 0]) : []);
  let lostAt: number | undefined;
  let lastTakeoverMs: number | undefined;
  let lastPrimaryAt: number | undefined;
  const onRoleChanged = (c: { from?: string; to?: string; reason?: string; at: number }): void => {
    if (c.to !== 'primary') return;
    lastPrimaryAt = c.at;
    if (c.from !== 'secondary') return;
    const cause = c.reason ?? 'unknown';
    failovers.set(cause, (failovers.get(cause) ?? 0) + 1);
    if (lostAt !== undefined) lastTakeoverMs = Math.max(0, c.at - lostAt);
    lostAt = undefined;
  };
  const onPrimaryLost = (e: { at: number }): void => {
    lostAt = e.at;
  };
  const emitter = election as unknown as Emitter;

  const metrics: Array<Gauge<string> | Counter<string>> = [];
  const define = (kind: 'gauge' | 'counter', name: string, help: string, labelNames: string[], fill: (sample: Sample) => void): void => {
    const allNames = [...constantNames, ...labelNames];
    const sampleOf =
      (metric: Gauge<string> | Counter<string>): Sample =>
      (labels, value) => {
        const all = { ...constant, ...labels };
        if (metric instanceof Gauge) {
          if (allNames.length === 0) metric.set(value);
          else metric.set(all, value);
        } else if (allNames.length === 0) metric.inc(value);
        else metric.inc(all, value);
      };
    const config = { name: `${prefix}${name}`, help, labelNames: allNames, registers: [] };
    metrics.push(
      kind === 'gauge'
        ? new Gauge({ ...config, collect(this: Gauge<string>) { this.reset(); fill(sampleOf(this)); } })
        : new Counter({ ...config, collect(this: Counter<string>) { this.reset(); fill(sampleOf(this)); } }),
    );
  };
  const status = (): AnyStatus => election.status();

  define('gauge', 'role', 'Current role of this node (1 for the current one).', ['role'], (sample) => {
    const role = status().role;
    for (const r of ROLES) sample({ role: r }, role === r ? 1 : 0);
  });
  define('gauge', 'epoch', 'Own epoch while primary, otherwise the highest epoch known (Redis: the revision).', [], (sample) =>
    sample({}, status().epoch),
  );
  define('counter', 'heartbeats_sent_total', 'Heartbeats this node published (Redis: lease operations).', [], (sample) => {
    const st = status();
    if (isWatcherStatus(st)) sample({}, st.heartbeatsSent);
    else if (isRedisStatus(st)) sample({}, st.redis.operations);
  });
  if (isWatcher) {
    define('counter', 'heartbeats_seen_total', 'Heartbeats this node received from a primary.', [], (sample) => {
      const st = status();
      if (isWatcherStatus(st)) sample({}, st.heartbeatsSeen);
    });
  }
  define('counter', 'failovers_total', 'Times this node went from secondary to primary, by cause.', ['cause'], (sample) => {
    for (const [cause, n] of failovers) sample({ cause }, n);
  });
  if (isWatcher) {
    define('gauge', 'last_takeover_seconds', 'Last takeover: from noticing the primary was lost to this node being primary.', [], (sample) => {
      if (lastTakeoverMs !== undefined) sample({}, lastTakeoverMs / 1000);
    });
  }
  define('gauge', 'last_takeover_timestamp_seconds', 'When this node last became primary, in seconds since the Unix epoch.', [], (sample) => {
    if (lastPrimaryAt !== undefined) sample({}, lastPrimaryAt / 1000);
  });
  if (isWatcher) {
    define('counter', 'dropped_messages_total', 'Invalid messages dropped, by reason.', ['reason'], (sample) => {
      const st = status();
      if (!isWatcherStatus(st)) return;
      const { total: _total, ...byReason } = st.dropped;
      for (const [reason, n] of Object.entries(byReason)) sample({ reason }, n);
    });
    define('gauge', 'primary_suspected', '1 while this secondary considers the primary lost.', [], (sample) => {
      const st = status();
      if (isWatcherStatus(st)) sample({}, st.primarySuspected ? 1 : 0);
    });
  }
  define('gauge', 'healthy', '1 while health() is ok (GET /healthz answers 200).', [], (sample) =>
    sample({}, (election.health() as Health).ok ? 1 : 0),
  );

  const registered: string[] = [];
  try {
    for (const m of metrics) {
      registry.registerMetric(m);
      registered.push((m as unknown as { name: string }).name);
    }
  } catch (error) {
    for (const name of registered) registry.removeSingleMetric(name);
    throw new FailoverError(
      'ERR_FAILOVER_INVALID_OPTION',
      `registerMetrics: ${error instanceof Error ? error.message : String(error)}; give each election on one registry its own \`prefix\``,
      { cause: error },
    );
  }
  emitter.on('roleChanged', onRoleChanged);
  if (isWatcher) emitter.on('primaryLost', onPrimaryLost);
  let done = false;
  return {
    names: registered,
    unregister() {
      if (done) return;
      done = true;
      emitter.off('roleChanged', onRoleChanged);
      if (isWatcher) emitter.off('primaryLost', onPrimaryLost);
      for (const name of registered) registry.removeSingleMetric(name);
    },
  };
}
