/**
 * The options of the PostgreSQL election: one readonly object with frozen defaults, validated
 * once (combinations included), every error an `InvalidOptionError` that names the option.
 *
 * @module
 */
import type { ClientConfig } from 'pg';
import type { ElectionCallbacks } from '../election/contract.js';
import { InvalidOptionError } from '../errors.js';
import { resolveMetadata } from '../metadata-option.js';
import type { Logger } from '../runtime/logger.js';

/** The defaults; docs/POSTGRES.md explains each bound. */
export const POSTGRES_DEFAULTS = Object.freeze({
  connectionString: 'postgres://127.0.0.1:5432/postgres',
  tablePrefix: 'failover_watch',
  confirmInterval: 500,
  maxDrift: 1500,
  idleSessionTimeout: 3000,
  tcpUserTimeout: 3000,
  keepAliveIdle: 1000,
  presenceInterval: 1000,
  connectTimeout: 2000,
  reconnectInterval: 250,
  stepDownHoldoff: 500,
  promotionRetry: 1000,
  demoteTimeout: 1000,
  startTimeout: 10_000,
  eventHistory: 100,
  notificationBuffer: 64,
});

/** Configuration of a {@link PostgresElection}. Only `project` is required. */
export interface PostgresElectionOptions extends ElectionCallbacks {
  /**
   * The group's name: the advisory lock key is derived from it, and it keys every row.
   * 1-128 characters from `A-Z a-z 0-9 _ . : -`.
   * @example 'billing-worker'
   */
  readonly project: string;
  /**
   * This node's id, unique in the project (1-200 printable characters, no spaces).
   * @default `${os.hostname()}-${process.pid}`
   */
  readonly instanceId?: string;
  /**
   * A libpq-style URL. Ignored when `clientConfig` is set.
   * @default 'postgres://127.0.0.1:5432/postgres'
   * @example 'postgres://app:secret@db.internal:5432/app?sslmode=require'
   */
  readonly connectionString?: string;
  /** Full `pg` client settings (host, user, password, ssl, ...); the election's own settings are added. */
  readonly clientConfig?: ClientConfig;
  /**
   * Prefix of the tables the election creates if missing (`<prefix>_election`, `<prefix>_nodes`,
   * `<prefix>_events`) and of its NOTIFY channel. Lowercase SQL identifier, at most 40 characters,
   * optionally schema-qualified (`ops.failover_watch`).
   * @default 'failover_watch'
   */
  readonly tablePrefix?: string;
  /**
   * How often a leader confirms on its lock connection that its session is alive and the epoch
   * still its own, in ms.
   * @default 500
   */
  readonly confirmInterval?: number;
  /**
   * A leader whose last successful confirm was sent longer ago than this (ms) steps down on its
   * own. Must be greater than `confirmInterval` and less than `idleSessionTimeout` (when that is
   * on), so that a leader stops acting before the server can hand its lock to another node.
   * @default 1500
   */
  readonly maxDrift?: number;
  /**
   * `idle_session_timeout` of the lock connection (PostgreSQL 14+), ms: the server ends the
   * session, and so releases the lock, of a leader that stopped talking (process paused, host
   * gone, network cut) after this long. 0 leaves the server's setting alone (then only TCP
   * keepalive and `tcp_user_timeout` bound a vanished leader, see docs/POSTGRES.md).
   * @default 3000
   */
  readonly idleSessionTimeout?: number;
  /**
   * `tcp_user_timeout` of the lock connection on the server side, ms; 0 leaves it alone.
   * @default 3000
   */
  readonly tcpUserTimeout?: number;
  /**
   * TCP keepalive: idle time before the first probe, ms; used on the client socket and (rounded
   * up to seconds) as the server's `tcp_keepalives_idle`, with a 1 s interval and 3 probes.
   * @default 1000
   */
  readonly keepAliveIdle?: number;
  /** How often a node refreshes its presence row (for `liveNodes()`), ms. @default 1000 */
  readonly presenceInterval?: number;
  /** Bound of each connection attempt, ms. @default 2000 */
  readonly connectTimeout?: number;
  /** Wait before reconnecting after a lost or failed connection, ms. @default 250 */
  readonly reconnectInterval?: number;
  /** After `stepDown()`, how long this node waits before queueing for the lock again, ms. @default 500 */
  readonly stepDownHoldoff?: number;
  /** After a failed `onPromote`, how long before the node queues for the lock again, ms. @default 1000 */
  readonly promotionRetry?: number;
  /** Bound of `onDemote`: abandoned (with a warning) after this long, ms. @default 1000 */
  readonly demoteTimeout?: number;
  /** `start()` rejects when the database did not answer within this long, ms. @default 10000 */
  readonly startTimeout?: number;
  /** How many leadership events the project keeps. @default 100 */
  readonly eventHistory?: number;
  /** Capacity of each `roleChanges()` buffer. @default 64 */
  readonly notificationBuffer?: number;
  /**
   * This node's priority as a successor: lower is preferred (as in the ZeroMQ watcher and the
   * other backends). A node that gets the lock while a node of strictly better priority is
   * queued for it gives the lock back unused (no epoch spent) and queues again, so the best
   * queued priority leads; among equal priorities, the lock's queue order (first come) decides.
   * A working leader keeps its role when a better node joins later (no preemption).
   * @default 1
   */
  readonly priority?: number;
  /**
   * Application metadata this node announces, stored in its presence row (`metadata` column):
   * followers get the leader's with `primaryChanged` and `primaryMetadataChanged`;
   * `setMetadata()` replaces it. Limits as the Watcher's option (docs/POSTGRES.md).
   * @example metadata: { port: '7001' }
   */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Whether this node may become primary from the start. @default true */
  readonly enabled?: boolean;
  /** Receives the election's log lines. @default silent */
  readonly logger?: Logger;
}

/** The options after validation and defaults. */
export interface ResolvedPostgresOptions extends ElectionCallbacks {
  readonly project: string;
  readonly instanceId: string;
  readonly connectionString: string;
  readonly clientConfig: ClientConfig | undefined;
  readonly tablePrefix: string;
  readonly confirmInterval: number;
  readonly maxDrift: number;
  readonly idleSessionTimeout: number;
  readonly tcpUserTimeout: number;
  readonly keepAliveIdle: number;
  readonly presenceInterval: number;
  readonly connectTimeout: number;
  readonly reconnectInterval: number;
  readonly stepDownHoldoff: number;
  readonly promotionRetry: number;
  readonly demoteTimeout: number;
  readonly startTimeout: number;
  readonly eventHistory: number;
  readonly notificationBuffer: number;
  readonly priority: number;
  /** The metadata given at construction (`setMetadata()` replaces the election's own copy). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly enabled: boolean;
  readonly logger: Logger | undefined;
}

const PROJECT = /^[A-Za-z0-9_.:-]{1,128}$/;
const INSTANCE = /^[\x21-\x7e]{1,200}$/;
const PREFIX = /^(?:[a-z_][a-z0-9_]{0,40}\.)?[a-z_][a-z0-9_]{0,40}$/;

function duration(name: string, value: unknown, fallback: number, min: number, max = 86_400_000): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `an integer number of ms from ${min} to ${max}`, value);
  }
  return value;
}

/** Validates `options` (throws `InvalidOptionError`) and fills the defaults. */
export function resolvePostgresOptions(options: PostgresElectionOptions, defaultInstanceId: string): ResolvedPostgresOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
  const d = POSTGRES_DEFAULTS;
  if (typeof options.project !== 'string' || !PROJECT.test(options.project)) {
    throw new InvalidOptionError('project', '1-128 characters from A-Z a-z 0-9 _ . : -', options.project);
  }
  const instanceId = options.instanceId ?? defaultInstanceId;
  if (typeof instanceId !== 'string' || !INSTANCE.test(instanceId)) {
    throw new InvalidOptionError('instanceId', '1-200 printable characters without spaces', options.instanceId);
  }
  const connectionString = options.connectionString ?? d.connectionString;
  if (typeof connectionString !== 'string' || !/^postgres(?:ql)?:\/\//.test(connectionString)) {
    throw new InvalidOptionError('connectionString', 'a postgres:// or postgresql:// URL', options.connectionString);
  }
  if (options.clientConfig !== undefined && (typeof options.clientConfig !== 'object' || options.clientConfig === null)) {
    throw new InvalidOptionError('clientConfig', 'a pg ClientConfig object', options.clientConfig);
  }
  const tablePrefix = options.tablePrefix ?? d.tablePrefix;
  if (typeof tablePrefix !== 'string' || !PREFIX.test(tablePrefix)) {
    throw new InvalidOptionError('tablePrefix', 'a lowercase SQL identifier of at most 40 characters, optionally schema.name', options.tablePrefix);
  }
  const confirmInterval = duration('confirmInterval', options.confirmInterval, d.confirmInterval, 10, 60_000);
  const maxDrift = duration('maxDrift', options.maxDrift, Math.max(d.maxDrift, confirmInterval * 3), 20, 600_000);
  if (maxDrift <= confirmInterval) {
    throw new InvalidOptionError('maxDrift', `more than confirmInterval (${confirmInterval} ms)`, options.maxDrift);
  }
  const idleSessionTimeout = duration('idleSessionTimeout', options.idleSessionTimeout, Math.max(d.idleSessionTimeout, maxDrift * 2), 0, 86_400_000);
  if (idleSessionTimeout !== 0 && idleSessionTimeout <= maxDrift) {
    throw new InvalidOptionError('idleSessionTimeout', `0 or more than maxDrift (${maxDrift} ms)`, options.idleSessionTimeout);
  }
  const priority = options.priority ?? 1;
  if (typeof priority !== 'number' || !Number.isSafeInteger(priority) || priority < 0 || priority > 1_000_000_000) {
    throw new InvalidOptionError('priority', 'an integer from 0 to 1000000000 (lower is preferred)', options.priority);
  }
  const enabled = options.enabled ?? true;
  if (typeof enabled !== 'boolean') throw new InvalidOptionError('enabled', 'a boolean', options.enabled);
  for (const name of ['onPromote', 'onDemote'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new InvalidOptionError(name, 'a function', options[name]);
  }
  const eventHistory = options.eventHistory ?? d.eventHistory;
  if (!Number.isInteger(eventHistory) || eventHistory < 0 || eventHistory > 100_000) {
    throw new InvalidOptionError('eventHistory', 'an integer from 0 to 100000', options.eventHistory);
  }
  const notificationBuffer = options.notificationBuffer ?? d.notificationBuffer;
  if (!Number.isInteger(notificationBuffer) || notificationBuffer < 1 || notificationBuffer > 100_000) {
    throw new InvalidOptionError('notificationBuffer', 'an integer from 1 to 100000', options.notificationBuffer);
  }
  return Object.freeze({
    project: options.project,
    instanceId,
    connectionString,
    clientConfig: options.clientConfig,
    tablePrefix,
    confirmInterval,
    maxDrift,
    idleSessionTimeout,
    tcpUserTimeout: duration('tcpUserTimeout', options.tcpUserTimeout, d.tcpUserTimeout, 0),
    keepAliveIdle: duration('keepAliveIdle', options.keepAliveIdle, d.keepAliveIdle, 100),
    presenceInterval: duration('presenceInterval', options.presenceInterval, d.presenceInterval, 50),
    connectTimeout: duration('connectTimeout', options.connectTimeout, d.connectTimeout, 50),
    reconnectInterval: duration('reconnectInterval', options.reconnectInterval, d.reconnectInterval, 10),
    stepDownHoldoff: duration('stepDownHoldoff', options.stepDownHoldoff, d.stepDownHoldoff, 0),
    promotionRetry: duration('promotionRetry', options.promotionRetry, d.promotionRetry, 0),
    demoteTimeout: duration('demoteTimeout', options.demoteTimeout, d.demoteTimeout, 0),
    startTimeout: duration('startTimeout', options.startTimeout, d.startTimeout, 100),
    eventHistory,
    notificationBuffer,
    priority,
    metadata: resolveMetadata(options.metadata),
    enabled,
    logger: options.logger,
    onPromote: options.onPromote,
    onDemote: options.onDemote,
  });
}
