/**
 * The election backends of `failover-watch run`: each builds an `Election` (the contract of
 * `election/contract.ts`) with the supervisor's own `onPromote`/`onDemote` and hands it over as
 * it is. The supervisor speaks the contract to all of them: no callback is renamed, no field
 * refilled. A backend only adds what the unit record and the `started` event need (where the
 * cluster lives, its settings) and how long a demotion may take.
 *
 * ZeroMQ (one host) is loaded statically; Redis, etcd and PostgreSQL by dynamic import, so that
 * their packages (ioredis, etcd3, pg) are needed only when used.
 *
 * @module
 */
import { FailoverError } from '../../errors.js';
import { defaultWorkdir, type WatcherOptions } from '../../options.js';
import { Watcher } from '../../watcher.js';
import type { Election, ElectionDemoteContext, ElectionPromoteContext } from '../../election/contract.js';

/** The supervisor's callbacks: the contract's, passed to the election unchanged. */
export interface SupervisorCallbacks {
  /** Starts the command; resolves once it runs. Rejects when the role was lost meanwhile. */
  onPromote(context: ElectionPromoteContext): Promise<void>;
  /** Stops the command; the successor starts after this resolves (within the backend's budget). */
  onDemote(context: ElectionDemoteContext): Promise<void>;
}

/** The ZeroMQ backend's own notice the supervisor reports (an error the operator must see). */
export interface EndpointStolenEvent {
  readonly path: string;
  readonly found: string;
  readonly detail: string;
  readonly at: number;
}

/** One election and what the supervisor needs around it. */
export interface SupervisorBackend {
  readonly kind: 'zmq' | 'redis' | 'etcd' | 'postgres';
  /** The election itself: the supervisor listens to it and drives it through the contract. */
  readonly election: Election;
  /** Settings for the `started` event. */
  readonly settings: Record<string, unknown>;
  /** The cluster's directory on this host, where the unit record lives (see unit-record.ts). */
  readonly workdir: string;
  /** Names the cluster in the unit record (no credentials). */
  readonly cluster: string;
  /** How long onDemote may take to stop the command before the backend moves on; undefined: `--stop-timeout`. */
  readonly stopBudget: number | undefined;
  /** ZeroMQ only: subscribes to `endpointStolen`. */
  onEndpointStolen?(fn: (event: EndpointStolenEvent) => void): void;
}

export function zmqBackend(options: WatcherOptions, callbacks: SupervisorCallbacks): SupervisorBackend {
  const watcher = new Watcher({ ...options, onPromote: callbacks.onPromote, onDemote: callbacks.onDemote });
  const o = watcher.options;
  return {
    kind: 'zmq',
    election: watcher,
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
    onEndpointStolen: (fn) => void watcher.on('endpointStolen', fn),
  };
}

/** Loads a backend's entry point; names the missing package when its optional peer is not installed. */
async function load<T>(importer: () => Promise<T>, flag: string, pkg: string): Promise<T> {
  try {
    return await importer();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' || !String((error as Error).message).includes(pkg)) throw error;
    throw new FailoverError('ERR_FAILOVER_UNSUPPORTED', `${flag} needs the ${pkg} package: npm install ${pkg}`, { cause: error });
  }
}

/** What every cross-host backend takes from the command line. */
interface CommonBackendOptions {
  readonly project: string;
  /** This node's id; default: the hostname. */
  readonly instanceId: string | undefined;
  readonly priority: number | undefined;
  readonly leaseTTL: number | undefined;
  /** `--observe-only`: the node joins with failover disabled. */
  readonly observeOnly: boolean;
  /** Where the unit record lives; default: per user, server and project under the temp dir. */
  readonly workdir: string | undefined;
  /** Application metadata the node announces (`--metadata`); validated by the caller. */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

export interface RedisBackendOptions extends CommonBackendOptions {
  readonly redisUrl: string;
  readonly strategy: 'race' | 'priority';
}

/** `HOST:PORT[/DB]` of a URL, without credentials; the text without credentials when it does not parse. */
function serverOf(url: string, defaultPort: string, withDb: boolean): string {
  try {
    const u = new URL(url);
    const db = u.pathname.replace(/^\//, '') || (withDb ? '0' : '');
    return `${u.hostname}:${u.port || defaultPort}${db === '' ? '' : `/${db}`}`;
  } catch {
    // Validated before; keep the text (without credentials).
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

/**
 * The Redis election as the unit record names it (`redis HOST:PORT/DB PROJECT`, no credentials),
 * and its default directory on this host: nodes of one election on one host share it when they
 * spell the server the same way.
 */
export function redisCluster(redisUrl: string, project: string): { cluster: string; workdir: string } {
  const server = serverOf(redisUrl, '6379', true);
  return { cluster: `redis ${server} ${project}`, workdir: defaultWorkdir(`redis-${server}-${project}`) };
}

/** The Redis backend; loads ioredis only when used. */
export async function redisBackend(options: RedisBackendOptions, callbacks: SupervisorCallbacks): Promise<SupervisorBackend> {
  const { Cluster } = await load(() => import('../../redis.js'), '--redis', 'ioredis');
  const instanceId = options.instanceId ?? (await import('node:os')).hostname();
  const cluster = new Cluster({
    project: options.project,
    redisUrl: options.redisUrl,
    strategy: options.strategy,
    instanceId,
    enabled: !options.observeOnly,
    ...(options.priority !== undefined ? { priority: options.priority } : {}),
    ...(options.leaseTTL !== undefined ? { leaseTTL: options.leaseTTL } : {}),
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
    onPromote: callbacks.onPromote,
    onDemote: callbacks.onDemote,
  });
  const where = redisCluster(options.redisUrl, options.project);
  const workdir = options.workdir ?? where.workdir;
  return {
    kind: 'redis',
    election: cluster,
    workdir,
    cluster: where.cluster,
    settings: {
      backend: 'redis',
      project: options.project,
      strategy: options.strategy,
      priority: cluster.options.nodePriority,
      leaseTTL: cluster.options.leaseTTL,
      enabled: !options.observeOnly,
      workdir,
      metadata: options.metadata ?? {},
    },
    // The Redis election abandons an onDemote that takes longer than 1 s: stop the command within that.
    stopBudget: 900,
  };
}

export interface EtcdBackendOptions extends CommonBackendOptions {
  /** The etcd endpoints (http:// or https://). */
  readonly hosts: readonly string[];
  /** How long onDemote may take (the supervisor's leave budget). */
  readonly demoteTimeout: number;
}

/** The etcd election as the unit record names it, and its default directory on this host. */
export function etcdCluster(hosts: readonly string[], project: string): { cluster: string; workdir: string } {
  const servers = hosts.map((h) => serverOf(h, '2379', false)).join(',');
  return { cluster: `etcd ${servers} ${project}`, workdir: defaultWorkdir(`etcd-${servers}-${project}`) };
}

/** The etcd backend; loads etcd3 only when used. */
export async function etcdBackend(options: EtcdBackendOptions, callbacks: SupervisorCallbacks): Promise<SupervisorBackend> {
  const { EtcdElection } = await load(() => import('../../etcd.js'), '--etcd', 'etcd3');
  const instanceId = options.instanceId ?? (await import('node:os')).hostname();
  const election = new EtcdElection({
    project: options.project,
    hosts: options.hosts,
    instanceId,
    enabled: !options.observeOnly,
    demoteTimeout: options.demoteTimeout,
    ...(options.priority !== undefined ? { priority: options.priority } : {}),
    ...(options.leaseTTL !== undefined ? { leaseTTL: options.leaseTTL } : {}),
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
    onPromote: callbacks.onPromote,
    onDemote: callbacks.onDemote,
  });
  const where = etcdCluster(options.hosts, options.project);
  const workdir = options.workdir ?? where.workdir;
  return {
    kind: 'etcd',
    election,
    workdir,
    cluster: where.cluster,
    settings: {
      backend: 'etcd',
      project: options.project,
      priority: options.priority ?? 1,
      leaseTTL: options.leaseTTL ?? 3000,
      enabled: !options.observeOnly,
      workdir,
      metadata: options.metadata ?? {},
    },
    stopBudget: undefined,
  };
}

export interface PostgresBackendOptions extends Omit<CommonBackendOptions, 'leaseTTL' | 'priority'> {
  /** postgres:// or postgresql:// URL. */
  readonly connectionString: string;
  /** How long onDemote may take (the supervisor's leave budget). */
  readonly demoteTimeout: number;
}

/** The PostgreSQL election as the unit record names it, and its default directory on this host. */
export function postgresCluster(connectionString: string, project: string): { cluster: string; workdir: string } {
  const server = serverOf(connectionString, '5432', false);
  return { cluster: `postgres ${server} ${project}`, workdir: defaultWorkdir(`postgres-${server}-${project}`) };
}

/** The PostgreSQL backend; loads pg only when used. */
export async function postgresBackend(options: PostgresBackendOptions, callbacks: SupervisorCallbacks): Promise<SupervisorBackend> {
  const { PostgresElection } = await load(() => import('../../postgres.js'), '--postgres', 'pg');
  const instanceId = options.instanceId ?? (await import('node:os')).hostname();
  const election = new PostgresElection({
    project: options.project,
    connectionString: options.connectionString,
    instanceId,
    enabled: !options.observeOnly,
    demoteTimeout: options.demoteTimeout,
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
    onPromote: callbacks.onPromote,
    onDemote: callbacks.onDemote,
  });
  const where = postgresCluster(options.connectionString, options.project);
  const workdir = options.workdir ?? where.workdir;
  return {
    kind: 'postgres',
    election,
    workdir,
    cluster: where.cluster,
    settings: { backend: 'postgres', project: options.project, enabled: !options.observeOnly, workdir, metadata: options.metadata ?? {} },
    stopBudget: undefined,
  };
}
