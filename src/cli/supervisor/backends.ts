/**
 * The two election backends of `failover-watch run`, behind one small interface: the ZeroMQ
 * Watcher (one host) and the Redis lease election (across hosts).
 *
 * @module
 */
import { FailoverError } from '../../errors.js';
import { defaultWorkdir, type WatcherOptions } from '../../options.js';
import { Watcher, type RoleChange } from '../../watcher.js';
import type { Health } from '../../health.js';
import type { MetricsSource } from '../../metrics.js';

/** What the supervisor asks of the election. */
export interface SupervisorHooks {
  /** Start the command; the role is primary once this resolves. `signal` aborts when the role is lost. */
  onPromote(epoch: number, reason: string, signal: AbortSignal): Promise<void>;
  /** Stop the command; the successor starts after this resolves (within the backend's budget). */
  onDemote(epoch: number, reason: string): Promise<void>;
  onRoleChanged(change: { from: string; to: string; epoch: number; at: number; instanceId: string; reason: string }): void;
  onPrimaryLost(event: { instanceId: string | undefined; cause: string; willPromote: boolean; reason: string; at: number }): void;
  onPromotionFailed(event: { error: string; retryInMs: number; at: number }): void;
  /** The primary's filesystem socket file is no longer the one it bound (ZeroMQ backend only). */
  onEndpointStolen(event: { path: string; found: string; detail: string; at: number }): void;
}

/** One election, ZeroMQ or Redis. */
export interface SupervisorBackend {
  readonly kind: 'zmq' | 'redis';
  readonly instanceId: string;
  readonly role: string;
  /** Settings for the `started` event. */
  readonly settings: Record<string, unknown>;
  /** The cluster's directory on this host, where the unit record lives (see unit-record.ts). */
  readonly workdir: string;
  /** Names the cluster in the unit record: the ZeroMQ endpoint, or the Redis server and project. */
  readonly cluster: string;
  /** How long onDemote may take to stop the command before the backend moves on. */
  readonly stopBudget: number | undefined;
  start(): Promise<void>;
  shutdown(): Promise<void>;
  /** Hands the role over; false when the backend cannot. */
  stepDown(): boolean;
  status(): unknown;
  /** What /healthz answers: the election's own health(). */
  health(): Health;
  /** Calls `fn` with the election once it exists (for /metrics): at once, or once start() made it. */
  onElection(fn: (election: MetricsSource) => void): void;
}

export function zmqBackend(options: WatcherOptions, hooks: SupervisorHooks): SupervisorBackend {
  const watcher = new Watcher({
    ...options,
    onPromote: ({ epoch, reason, signal }) => hooks.onPromote(epoch, reason, signal),
    onDemote: ({ epoch, reason }) => hooks.onDemote(epoch, reason),
  });
  watcher.on('roleChanged', (c: RoleChange) => hooks.onRoleChanged(c));
  watcher.on('primaryLost', (e) => hooks.onPrimaryLost(e));
  watcher.on('promotionFailed', (e) => hooks.onPromotionFailed(e));
  watcher.on('endpointStolen', (e) => hooks.onEndpointStolen(e));
  const o = watcher.options;
  return {
    kind: 'zmq',
    instanceId: o.instanceId,
    get role() {
      return watcher.role;
    },
    settings: {
      backend: 'zmq',
      endpoint: o.endpoint.address,
      role: o.role,
      priority: o.priority,
      heartbeatInterval: o.heartbeatInterval,
      heartbeatTimeout: o.heartbeatTimeout,
      enabled: o.enabled,
      workdir: o.workdir,
      metadata: o.metadata,
    },
    workdir: o.workdir,
    cluster: `zmq ${o.endpoint.address}`,
    stopBudget: undefined,
    start: () => watcher.start(),
    shutdown: () => watcher.shutdown(),
    stepDown: () => {
      watcher.stepDown();
      return true;
    },
    status: () => watcher.status(),
    health: () => watcher.health(),
    onElection: (fn) => fn(watcher),
  };
}

export interface RedisBackendOptions {
  readonly redisUrl: string;
  readonly project: string;
  readonly nodeId: string | undefined;
  readonly priority: number | undefined;
  readonly strategy: 'race' | 'priority';
  readonly leaseTTL: number | undefined;
  readonly observeOnly: boolean;
  /** Where the unit record lives; default: per user, Redis server and project under the temp dir. */
  readonly workdir: string | undefined;
  /** Application metadata the node announces (`--metadata`); validated by the caller. */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

/**
 * The Redis election as the unit record names it (`redis HOST:PORT/DB PROJECT`, no credentials),
 * and its default directory on this host: nodes of one election on one host share it when they
 * spell the server the same way.
 */
export function redisCluster(redisUrl: string, project: string): { cluster: string; workdir: string } {
  let server = redisUrl;
  try {
    const url = new URL(redisUrl);
    const db = url.pathname.replace(/^\//, '') || '0';
    server = `${url.hostname}:${url.port || '6379'}/${db}`;
  } catch {
    // Validated before; keep the text (without credentials, below).
    server = redisUrl.replace(/\/\/[^@/]*@/, '//');
  }
  return { cluster: `redis ${server} ${project}`, workdir: defaultWorkdir(`redis-${server}-${project}`) };
}

/** The Redis backend; loads ioredis only when used. */
export async function redisBackend(options: RedisBackendOptions, hooks: SupervisorHooks): Promise<SupervisorBackend> {
  const redis = await import('../../redis.js');
  let cluster: import('../../redis.js').Cluster | undefined;
  const electionWaiters: Array<(election: MetricsSource) => void> = [];
  let starting: Promise<import('../../redis.js').Cluster> | undefined;
  const leaving = new AbortController();
  const config: import('../../redis.js').ClusterConfig = {
    project: options.project,
    redisUrl: options.redisUrl,
    strategy: options.strategy,
    ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
    ...(options.priority !== undefined ? { nodePriority: options.priority } : {}),
    ...(options.leaseTTL !== undefined ? { leaseTTL: options.leaseTTL } : {}),
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
    onStart: (ctx) => hooks.onPromote(ctx.revision, ctx.reason, ctx.signal),
    onStop: (ctx) => hooks.onDemote(ctx.revision, 'lost'),
  };
  if (options.observeOnly) {
    throw new FailoverError('ERR_FAILOVER_INVALID_OPTION', '--observe-only is not available with --redis: a Redis node that cannot lead would only watch the lease');
  }
  const nodeId = options.nodeId ?? (await import('node:os')).hostname();
  const where = redisCluster(options.redisUrl, options.project);
  return {
    kind: 'redis',
    instanceId: nodeId,
    workdir: options.workdir ?? where.workdir,
    cluster: where.cluster,
    get role() {
      return cluster?.role ?? 'starting';
    },
    settings: {
      backend: 'redis',
      project: options.project,
      strategy: options.strategy,
      priority: options.priority ?? 1,
      leaseTTL: options.leaseTTL ?? 3000,
      workdir: options.workdir ?? where.workdir,
      metadata: options.metadata ?? {},
    },
    // go-failover abandons an onStop that takes longer than 1 s: stop the command within that.
    stopBudget: 900,
    async start() {
      starting = redis.run({ ...config, signal: leaving.signal });
      cluster = await starting;
      for (const fn of electionWaiters.splice(0)) fn(cluster);
      cluster.on('roleChanged', (c) =>
        hooks.onRoleChanged({ from: c.from, to: c.to, epoch: c.epoch, at: c.at, instanceId: nodeId, reason: c.reason }),
      );
    },
    async shutdown() {
      // Also while run() is still connecting: its signal ends it, and the election with it.
      leaving.abort();
      await starting?.catch(() => undefined);
      await cluster?.close().catch(() => undefined);
    },
    stepDown: () => {
      cluster?.stepDown();
      return true;
    },
    status: () => cluster?.status(),
    health: () => cluster?.health() ?? { ok: false, status: 503, reason: 'starting' },
    onElection: (fn) => {
      if (cluster !== undefined) fn(cluster);
      else electionWaiters.push(fn);
    },
  };
}
