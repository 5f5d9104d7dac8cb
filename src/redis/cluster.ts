/**
 * The Redis lease election (`Cluster`), exported by the `failover-watch/redis` entry point
 * (`src/redis.ts`, whose header says what it guarantees).
 *
 * The driver around the pure state machine in `core/lease-machine.ts`: it feeds it inputs (timer
 * ticks, lease operation outcomes, pub/sub notices, callback settlements), runs the effects it
 * asks for against the lease store (`transport/redis/*`), and delivers notifications without
 * letting a listener block or throw into the machine. Every decision is the machine's.
 *
 * @module
 */
import type { RedisOptions } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  initialLeaseState,
  leaseStep,
  type LeaderView,
  type LeaseEffect,
  type LeaseInput,
  type LeaseMachineState,
  type LeaseNotification,
  type LeasePhase,
  type LeaseRole,
  type LeaseRoleChangeReason,
  type LeaseStrategy,
} from '../core/lease-machine.js';
import {
  LEASE_DEFAULTS,
  resolveLeaseOptions,
  type ResolvedLeaseOptions,
  type StartContext,
  type StopContext,
} from './lease-options.js';
import { FailoverError } from '../errors.js';
import { judgeLeaseHealth, type Health } from '../health.js';
import { Notifier } from '../runtime/notifier.js';
import { StepLoop } from '../runtime/step-loop.js';
import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.js';
import { prefixed, silentLogger, type Logger } from '../runtime/logger.js';
import { leaseKeys } from '../transport/redis/lease-keys.js';
import { resolveMetadata } from '../metadata-option.js';
import { NO_METADATA, sameMetadata, type Metadata } from '../protocol/metadata.js';
import type { StoredMetadata } from '../transport/redis/lease-store.js';
import type { LeadershipEvent, LeaseStore, LiveNode } from '../transport/redis/lease-store.js';
import { RedisLeaseStore } from '../transport/redis/redis-lease-store.js';
import type {
  Election,
  ElectionDemoteContext,
  ElectionEvents,
  ElectionNode,
  ElectionPrimaryLostEvent,
  ElectionPromoteContext,
  ElectionPromotionFailedEvent,
  ElectionStatusCore,
} from '../election/contract.js';
import type { ClusterStats, NodeInfo } from './stats.js';
import { callSettled, Deliveries, TermSignals } from '../election/driver.js';

export { formatStats } from './stats.js';
export type { ClusterStats, NodeInfo } from './stats.js';
export type {
  Election,
  ElectionDemoteContext,
  ElectionNode,
  ElectionPromoteContext,
  ElectionRoleChange,
  ElectionStatusCore,
} from '../election/contract.js';

export type { LeaseRole as Role, LeasePhase, LeaseStrategy as Strategy, LeaseRoleChangeReason as RoleChangeReason, LeaderView };
export type { StartContext, StopContext, LiveNode, LeadershipEvent };
export type { LeadershipAction } from '../transport/redis/lease-store.js';
export { LEASE_DEFAULTS as DEFAULTS };
export { FailoverError, InvalidOptionError, isFailoverError } from '../errors.js';
export type { FailoverErrorCode } from '../errors.js';
export type { Health } from '../health.js';
export { FakeClock, systemClock } from '../runtime/clock.js';
export type { Clock, Logger };

/** Configuration of {@link run}. Only `project` is required. */
export interface ClusterConfig {
  /**
   * A unique name of the group; the prefix of every Redis key (as a hash tag, `{project}:...`).
   * 1-128 characters from `A-Z a-z 0-9 _ . : -`.
   * @example 'billing-worker'
   */
  readonly project: string;
  /**
   * This node's id, unique in the project (1-256 printable characters, no spaces): the
   * contract's name. Give this or `nodeId`, not both.
   * @default os.hostname()
   */
  readonly instanceId?: string;
  /**
   * go-failover's name for {@link ClusterConfig.instanceId}.
   * @default os.hostname()
   */
  readonly nodeId?: string;
  /**
   * Priority of this node: lower is better. Only meaningful with `strategy: 'priority'`. The
   * contract's name; give this or `nodePriority`, not both.
   * @default 1
   */
  readonly priority?: number;
  /** go-failover's name for {@link ClusterConfig.priority}. @default 1 */
  readonly nodePriority?: number;
  /**
   * Whether this node may become leader; `setEnabled()` changes it at runtime. A disabled node
   * stays registered (listed by `liveNodes()` with `eligible: false`) and never takes the lease.
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * The contract's callback: called when this node took the lease, with the term's `epoch`
   * (the revision: the fencing token), the `reason` (`vacant`, `handover`, `expired`,
   * `reacquired`) and a `signal` that aborts when leadership is lost. Resolve when ready to
   * serve (it may also run for the whole term); a throw or rejection hands the lease back at
   * once (`promotionFailed`, no `onDemote`) and the node holds off for `leaseTTL`. Give this or
   * `onStart`, not both.
   */
  readonly onPromote?: (context: ElectionPromoteContext) => void | Promise<void>;
  /**
   * The contract's callback: called once per `onPromote` that resolved, after the term ended and
   * `onPromote` settled, with the term's `epoch` and the `reason` (`shutdown`, `stepdown`,
   * `lease-lost`, `drift`, `preempted`, `disabled`). Abandoned, with a warning, after 1 s; a
   * leaving leader releases the lease after it. Give this or `onStop`, not both.
   */
  readonly onDemote?: (context: ElectionDemoteContext) => void | Promise<void>;
  /**
   * `race`: whoever takes the free lease first leads. `priority`: the live node with the best
   * (lowest) `nodePriority` leads; a worse leader hands the lease over to a better live node.
   * @default 'race'
   */
  readonly strategy?: LeaseStrategy;
  /**
   * Redis connection URL; `rediss://` for TLS; user and password in the URL for AUTH/ACL.
   * Ignored when `redisOptions` is set.
   * @default 'redis://127.0.0.1:6379'
   * @example 'rediss://app:secret@redis.internal:6380/0'
   */
  readonly redisUrl?: string;
  /**
   * Full ioredis options (host, port, username, password, tls, ...). When set, `redisUrl` is
   * ignored. Election defaults (`enableOfflineQueue: false`, `maxRetriesPerRequest: 0`,
   * `commandTimeout: maxDrift`, a fast `retryStrategy`) apply unless set here.
   */
  readonly redisOptions?: RedisOptions;
  /**
   * How often the node runs a lease operation (refresh as leader, acquire as standby), in ms;
   * each tick is jittered by ±20%. Must be less than `maxDrift / 1.2`.
   * @default 500 (or `maxDrift / 3` when that is smaller)
   */
  readonly tickInterval?: number;
  /**
   * Lifetime of the lease in Redis, in ms; a crashed leader is replaced within `leaseTTL` plus a
   * tick. Minimum 100.
   * @default 3000
   */
  readonly leaseTTL?: number;
  /**
   * A leader that could not refresh its lease for this long (ms, measured from the send time of
   * its last successful refresh) steps down on its own, before the lease can expire and another
   * node take it. Must be less than `leaseTTL`.
   * @default leaseTTL / 2
   */
  readonly maxDrift?: number;
  /**
   * go-failover's name for `onPromote`, with go-failover's context: called when this node
   * becomes leader, with the term's `revision` (fencing token) and a `signal` that aborts when
   * leadership is lost. It may run for the whole term or return early (the node stays leader);
   * if it throws or rejects, the node steps down at once. It must return promptly once the
   * signal aborts: the node does not run for leader again before.
   */
  readonly onStart?: (context: StartContext) => void | Promise<void>;
  /**
   * go-failover's name for `onDemote`: called after leadership was lost and `onStart` resolved,
   * with `{ revision, reason }`. Abandoned, with a warning, after 1 s. A closing leader releases
   * the lease after it, so the successor starts after this cleanup.
   */
  readonly onStop?: (context: StopContext) => void | Promise<void>;
  /** Receives the election's log lines (pino, console and winston fit). @default silent */
  readonly logger?: Logger;
  /**
   * `run()` rejects (`ERR_FAILOVER_TIMEOUT`) when no lease operation succeeded within this long
   * after it started, ms. Later outages are tolerated: the election waits for Redis.
   * @default 10000
   */
  readonly startTimeout?: number;
  /**
   * How many leadership events the project keeps in Redis.
   * @default 100
   */
  readonly eventHistory?: number;
  /**
   * Capacity of each `roleChanges()` iterator's buffer; a slow consumer loses the oldest changes.
   * @default 64
   */
  readonly notificationBuffer?: number;
  /** Aborting it closes the cluster, like `close()` (the analogue of go-failover's context). */
  readonly signal?: AbortSignal;
  /** The clock (tests). @default systemClock */
  readonly clock?: Clock;
  /**
   * Application metadata this node announces (stored in `{project}:metadata`): followers get the
   * leader's with `primaryChanged` and `primaryMetadataChanged`. Limits as the Watcher's option.
   * @default {}
   * @example metadata: { port: '7001' }
   */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** A role transition, as delivered by `roleChanged` and `roleChanges()`; the Watcher's shape. */
export interface RoleChange {
  readonly from: LeaseRole;
  readonly to: LeaseRole;
  /** The revision of the term begun (to primary) or ended (from primary). */
  readonly epoch: number;
  readonly reason: LeaseRoleChangeReason;
  /** When the role changed: ms since the Unix epoch, sub-millisecond precision. */
  readonly at: number;
  /** This node's id. */
  readonly instanceId: string;
}

/**
 * A follower sees another node lead: a new holder of the lease, or the same node for a new
 * revision (the Watcher's `primaryChanged`; a lease carries no pid or host, but the priority).
 */
export interface PrimaryChangedEvent {
  /** The leader's nodeId. */
  readonly instanceId: string;
  /** Its term's revision. */
  readonly epoch: number;
  /** Its priority as the lease records it (NaN when the lease does not say). */
  readonly priority: number;
  /** When this node learned it: ms since the Unix epoch. */
  readonly at: number;
  /** The leader's application metadata (`{}` when none, or when it could not be read). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** The cluster's events. No event is called `error`: a cluster never throws at you. */
export interface ClusterEvents {
  // Method syntax: a listener typed for the contract's ElectionRoleChange fits too.
  roleChanged(change: RoleChange): void;
  /**
   * This node follows another leader: once per leader and revision, never for its own term,
   * after the state changed. Emitted as soon as a lease operation or pub/sub notice shows it
   * (a standby learns of a graceful handover within milliseconds, of an expiry within a tick).
   */
  primaryChanged: (event: PrimaryChangedEvent) => void;
  /** The leader this node follows announced other metadata. */
  primaryMetadataChanged: (event: { readonly instanceId: string; readonly epoch: number; readonly metadata: Readonly<Record<string, string>>; readonly at: number }) => void;
  /**
   * A follower considers its leader gone: `cause` `released` (its release was announced: a
   * graceful handover) or `expired` (a lease operation found the lease free or taken over).
   */
  primaryLost: (event: ElectionPrimaryLostEvent) => void;
  /** `onPromote` (`onStart`) threw or rejected: the lease was handed back, no `onDemote` runs. */
  promotionFailed: (event: ElectionPromotionFailedEvent) => void;
}

/** The Redis election's own part of `status()`. */
export interface RedisStatusSection {
  readonly project: string;
  readonly strategy: LeaseStrategy;
  readonly priority: number;
  readonly tickInterval: number;
  readonly leaseTTL: number;
  readonly maxDrift: number;
  /** The leader as last reported by Redis (this node when primary), in go-failover's words. */
  readonly leader: LeaderView | undefined;
  /** `ok` after a successful lease operation, `failing` after a failed one. */
  readonly connection: 'unknown' | 'ok' | 'failing';
  readonly lastError: string | undefined;
  /** ms since the last successful lease operation. */
  readonly lastOkAgeMs: number | undefined;
  /** On a primary: ms since the send time of its last successful refresh (it steps down at `maxDrift`). */
  readonly leaseAgeMs: number | undefined;
  /** Another live process uses this instanceId. */
  readonly duplicateNodeId: boolean;
  /**
   * True while this node's acquires are refused because no valid revision is left: the next
   * would exceed 2^53 - 1 (or the revision key does not hold an integer). Nobody leads until an
   * operator resets the revision (docs/REDIS.md); cleared when a lease is granted again.
   */
  readonly revisionExhausted: boolean;
  /** Lease operations sent (acquire, refresh, observe). */
  readonly operations: number;
  readonly operationFailures: number;
  readonly skippedTicks: number;
  /** Terms begun (leases taken). */
  readonly acquisitions: number;
  /** Terms ended, for any reason. */
  readonly stepDowns: number;
  readonly preemptions: number;
  readonly driftStepDowns: number;
  readonly leasesLost: number;
  readonly failedStarts: number;
  readonly abandonedStops: number;
  readonly notices: number;
  /** Acquires refused because no valid revision was left (each tick while `revisionExhausted`). */
  readonly revisionRefusals: number;
  /** This node's own metadata. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The followed leader's metadata as last read; undefined before it was read or while leading. */
  readonly leaderMetadata: Readonly<Record<string, string>> | undefined;
  /** Stored metadata that broke the rules when read (dropped, never thrown). */
  readonly metadataDropped: number;
}

/**
 * What `status()` returns: the contract's core (`backend`, `instanceId`, `role`, `phase`,
 * `epoch`, `enabled`, `primary`, `primarySuspected`, the counters) and the `redis` section. A
 * plain, JSON-friendly object. (Before 0.2 the Redis fields were flat and `nodeId`/`revision`
 * repeated `instanceId`/`epoch`: docs/REDIS.md lists the moves.)
 */
export interface ClusterStatus extends ElectionStatusCore {
  readonly backend: 'redis';
  readonly role: LeaseRole;
  readonly phase: LeasePhase;
  readonly redis: RedisStatusSection;
}

/** Dependencies a test may replace. @internal */
export interface ClusterDeps {
  readonly store?: LeaseStore;
  readonly random?: () => number;
  readonly session?: string;
}

type Deferred<T> = { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void };

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}


/** Hides the password of a redis URL for messages. */
function redact(url: string | undefined): string {
  if (url === undefined) return 'the configured Redis';
  return url.replace(/\/\/([^@/]*)@/, (_m, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`);
}

/** Where the election connects, for messages: the URL (password hidden), or what `redisOptions` says. */
function target(o: ResolvedLeaseOptions): string {
  if (o.redisOptions === undefined) return redact(o.redisUrl);
  const r = o.redisOptions as RedisOptions;
  if (r.sentinels !== undefined) return `the Redis of sentinel group ${JSON.stringify(r.name ?? 'mymaster')} (redisOptions)`;
  if (typeof r.path === 'string') return `${r.path} (redisOptions)`;
  return `${r.tls ? 'rediss' : 'redis'}://${r.host ?? 'localhost'}:${r.port ?? 6379} (redisOptions)`;
}

/**
 * Starts the election in the background and resolves with its handle once this node's first
 * role is settled (secondary, or primary with `onStart` called). Rejects with an
 * `InvalidOptionError` before connecting when the config is invalid, and with
 * `ERR_FAILOVER_TIMEOUT` when Redis did not answer within `startTimeout`.
 */
export async function run(config: ClusterConfig, deps: ClusterDeps = {}): Promise<Cluster> {
  const cluster = new Cluster(config, deps);
  await cluster.start();
  return cluster;
}

/**
 * A running election (go-failover's Cluster). Safe to use from anywhere; every method is
 * non-blocking except the awaited ones.
 */
export class Cluster extends Notifier<ClusterEvents, RoleChange> implements Election<ClusterStatus> {
  readonly backend = 'redis' as const;
  readonly options: ResolvedLeaseOptions;

  /** The names with listeners, typed as the contract's (the Redis events are a superset). */
  override eventNames(): Array<keyof ElectionEvents> {
    return super.eventNames() as Array<keyof ElectionEvents>;
  }
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #logger: Logger;
  readonly #store: LeaseStore;
  readonly #loop: StepLoop<LeaseMachineState, LeaseInput, LeaseEffect>;
  /** onPromote's signal, per term. */
  readonly #signals = new TermSignals();
  readonly #deliveries = new Deliveries();
  #started = deferred<void>();
  #closed = deferred<void>();
  #closeResult: Promise<void> | undefined;
  #releaseError: FailoverError | undefined;
  #connectionDown = false;
  #finished = false;
  /** Removes the config signal's abort listener (set once run() started). */
  #forgetSignal: () => void = () => {};
  #startTimer: TimerHandle | undefined;
  /** This node's metadata (the option, then `setMetadata()`). */
  #metadata: Metadata = NO_METADATA;
  /** The leader followed, with its metadata as last read (undefined before the first read). */
  #followed: { readonly instanceId: string; readonly epoch: number; readonly metadata: Metadata | undefined } | undefined;
  /** Stored metadata that broke the rules when read. */
  #metadataDropped = 0;
  #startCalled = false;
  /** Why the last onPromote failed, for `promotionFailed`. */
  #lastStartError: string | undefined;

  /**
   * Validates the config (throws `InvalidOptionError`); connects nothing until `start()`.
   * (`run(config)` is both in one call.)
   */
  constructor(config: ClusterConfig, deps: ClusterDeps = {}) {
    super();
    this.options = resolveLeaseOptions(config, hostname());
    const o = this.options;
    this.#metadata = o.metadata;
    this.#clock = o.clock ?? systemClock;
    this.#random = deps.random ?? Math.random;
    this.#logger = prefixed(o.logger ?? silentLogger, `${o.project}/${o.nodeId}`);
    const session = deps.session ?? randomBytes(12).toString('hex');
    this.#store =
      deps.store ??
      new RedisLeaseStore({
        keys: leaseKeys(o.project),
        nodeId: o.nodeId,
        session,
        priority: o.nodePriority,
        strategy: o.strategy,
        leaseTTL: o.leaseTTL,
        tickInterval: o.tickInterval,
        commandTimeout: Math.max(1, Math.floor(o.maxDrift)),
        eventsLimit: o.eventHistory,
        redisUrl: o.redisUrl,
        redisOptions: o.redisOptions as RedisOptions | undefined,
      });
    this.#loop = new StepLoop<LeaseMachineState, LeaseInput, LeaseEffect>({
      initial: initialLeaseState({
        nodeId: o.nodeId,
        priority: o.nodePriority,
        strategy: o.strategy,
        tickInterval: o.tickInterval,
        leaseTTL: o.leaseTTL,
        maxDrift: o.maxDrift,
        stopTimeout: LEASE_DEFAULTS.stopTimeout,
        handoverTimeout: LEASE_DEFAULTS.stopTimeout,
        failureHoldOff: o.leaseTTL,
        enabled: o.enabled,
      }),
      step: leaseStep,
      clock: this.#clock,
      random: this.#random,
      run: (effect) => this.#run(effect),
      after: (input) => {
        if (input.type === 'closed') this.#finish();
      },
      tick: { type: 'tick' },
    });
    if (o.redisOptions !== undefined && config.redisUrl !== undefined) {
      this.#logger.warn(
        `redisUrl ${redact(o.redisUrl)} is ignored because redisOptions is set: give host, port (and tls) in redisOptions; connecting to ${target(o)}`,
      );
    }
    // Handled here so an un-awaited promise cannot crash the process; callers still see it.
    this.#started.promise.catch(() => undefined);
  }

  /**
   * Joins the election; resolves once this node's first role is settled (secondary, or primary
   * with `onPromote` called). Rejects with `ERR_FAILOVER_TIMEOUT` when Redis did not answer
   * within `startTimeout` (the cluster is then closed), and when called twice.
   */
  start(): Promise<void> {
    if (this.#startCalled) return Promise.reject(new FailoverError('ERR_FAILOVER_LIFECYCLE', 'start() was already called'));
    this.#startCalled = true;
    const o = this.options;
    if (o.signal?.aborted) {
      void this.close();
      return Promise.reject(new FailoverError('ERR_FAILOVER_LIFECYCLE', 'the signal was aborted before run() started'));
    }
    const onAbort = (): void => void this.close();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    // A long-lived signal must not keep a closed cluster alive.
    this.#forgetSignal = () => o.signal?.removeEventListener('abort', onAbort);
    this.#store.open({
      onNotice: (notice) => this.#dispatch({ type: 'notice', notice }),
      onMetadataNotice: (nodeId) => {
        if (this.#followed?.instanceId === nodeId) void this.#readLeaderMetadata(this.#followed.instanceId, this.#followed.epoch, false);
      },
      onConnected: () => {
        // Before the lease operations this reconnect triggers: a leader's metadata is stored before anyone sees it lead.
        void this.#store.writeMetadata?.(this.#metadata).catch((error: unknown) => this.#logger.warn(`storing metadata failed: ${String(error)}`));
        if (this.#connectionDown) this.#logger.info('reconnected to Redis');
        else this.#logger.debug(`connected to ${target(o)}`);
        this.#connectionDown = false;
        this.#dispatch({ type: 'connected' });
      },
      onConnectionLost: (detail) => {
        if (this.#finished || this.#loop.state.phase === 'stopping') return;
        if (!this.#connectionDown) this.#logger.warn(`Redis connection lost: ${detail}`);
        this.#connectionDown = true;
      },
    });
    this.#startTimer = this.#clock.setTimer(() => {
      this.#startTimer = undefined;
      if (this.#loop.state.settled) return;
      const detail = this.#loop.state.lastError ?? 'no answer';
      this.#started.reject(
        new FailoverError(
          'ERR_FAILOVER_TIMEOUT',
          `could not reach ${target(o)} within startTimeout (${o.startTimeout} ms): ${detail}`,
        ),
      );
      void this.close().catch(() => undefined);
    }, o.startTimeout);
    this.#dispatch({ type: 'start' });
    return this.#started.promise;
  }

  /** This node's id. */
  get instanceId(): string {
    return this.options.nodeId;
  }

  /** go-failover's name for {@link Cluster.instanceId}. */
  get nodeId(): string {
    return this.options.nodeId;
  }

  /** The current role. */
  get role(): LeaseRole {
    return this.#loop.state.role;
  }

  /** Own term's revision while primary; otherwise the highest revision seen: the fencing token. */
  get epoch(): number {
    return this.#loop.state.revision;
  }

  /** go-failover's name for {@link Cluster.epoch}. */
  get revision(): number {
    return this.#loop.state.revision;
  }

  /** Whether this node may become leader. */
  get enabled(): boolean {
    return this.#loop.state.enabled;
  }

  /**
   * Switches failover on or off: a disabled node keeps following (and is listed with
   * `eligible: false`) but never takes the lease; a disabled leader hands the lease over like
   * `stepDown()` (reason `disabled`). Works before `start()` too.
   */
  setEnabled(enabled: boolean): void {
    if (typeof enabled !== 'boolean') return;
    this.#dispatch({ type: 'setEnabled', enabled });
  }

  /** True while this node holds the lease and acts as leader. */
  get isLeader(): boolean {
    return this.#loop.state.role === 'primary';
  }

  /**
   * Leaves the election: a leader aborts `onStart`'s signal, waits for it and `onStop` (at most
   * 1 s), releases the lease and notifies the standbys, then the connections close. Idempotent:
   * every call returns the first call's promise. Rejects (`ERR_FAILOVER_TRANSPORT`) only when the
   * lease could not be released (Redis unreachable); it then expires within `leaseTTL`.
   */
  shutdown(): Promise<void> {
    if (this.#closeResult !== undefined) return this.#closeResult;
    this.#closeResult = this.#closed.promise.then(() => {
      if (this.#releaseError !== undefined) throw this.#releaseError;
    });
    this.#closeResult.catch(() => undefined);
    this.#dispatch({ type: 'shutdown' });
    return this.#closeResult;
  }

  /** go-failover's name for {@link Cluster.shutdown}: the same promise. */
  close(): Promise<void> {
    return this.shutdown();
  }

  /**
   * Hands the leader role over gracefully without leaving the election (the `Watcher`'s
   * `stepDown()`): aborts `onStart`'s signal, runs `onStop` after `onStart` settled (at most 1 s),
   * then releases the lease and notifies the standbys, so one of them takes over in milliseconds.
   * The role changes to `secondary` (reason `stepdown`) when the lease is released; this node then
   * stays out of the election for `leaseTTL` and runs for leader again afterwards. No effect
   * unless this node leads and is not already handing over (closing, preempted, failed start).
   */
  stepDown(): void {
    this.#dispatch({ type: 'stepDown' });
  }

  /** Resolves when the cluster has stopped (after `close()` or the config's signal). Never rejects. */
  wait(): Promise<void> {
    return this.#closed.promise;
  }

  /** `await using cluster = await run(...)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => undefined);
  }

  /**
   * Role changes as an async iterator with a bounded buffer; a slow consumer loses the oldest,
   * counted in `status().notificationsDropped`. Ends after the change to `stopped`.
   */
  roleChanges(): AsyncIterableIterator<RoleChange> {
    return this.openChangeStream(this.options.notificationBuffer);
  }

  /** This node, as go-failover's NodeInfo. */
  nodeInfo(): NodeInfo {
    return {
      nodeId: this.options.nodeId,
      priority: this.options.nodePriority,
      project: this.options.project,
      isLeader: this.isLeader,
      revision: this.#loop.state.revision,
    };
  }

  /**
   * The nodes registered as live (by the server's clock), best priority first, in the contract's
   * shape. The leader's `epoch` is the revision this node last saw it hold.
   */
  async liveNodes(): Promise<ElectionNode[]> {
    const nodes = await this.#store.liveNodes();
    const s = this.#loop.state;
    return nodes.map((n) => {
      const self = n.nodeId === this.options.nodeId;
      const leaderEpoch = self ? s.revision : s.leader?.nodeId === n.nodeId ? s.leader.revision : s.knownRevision;
      return {
        instanceId: n.nodeId,
        role: n.isLeader ? 'primary' : 'secondary',
        priority: n.priority,
        epoch: n.isLeader ? leaderEpoch : undefined,
        lastSeenAt: n.lastSeen,
        self,
        eligible: n.eligible,
        ...(n.metadata !== undefined ? { metadata: n.metadata } : {}),
      };
    });
  }

  /** The recorded leadership events, newest first (at most `eventHistory`). */
  events(limit = this.options.eventHistory): Promise<LeadershipEvent[]> {
    return this.#store.events(limit);
  }

  /** This node, the live nodes and the latest events, for {@link formatStats}. */
  async stats(eventLimit = 5): Promise<ClusterStats> {
    const [liveNodes, events] = await Promise.all([this.#store.liveNodes(), this.events(eventLimit)]);
    return { node: this.nodeInfo(), liveNodes, events };
  }

  /** A snapshot of the election's state and counters: the contract's core and the `redis` section. */
  status(): ClusterStatus {
    const s = this.#loop.state;
    const o = this.options;
    const now = this.#clock.now();
    const c = s.counters;
    const leader = s.leader;
    return {
      backend: 'redis',
      instanceId: o.nodeId,
      role: s.role,
      phase: s.phase,
      epoch: s.revision,
      enabled: s.enabled,
      primary: leader === undefined ? undefined : { instanceId: leader.nodeId, epoch: leader.revision },
      primarySuspected: s.role === 'secondary' && leader === undefined && s.followed !== undefined,
      promotions: c.acquisitions - c.failedStarts,
      demotions: c.stepDowns - c.failedStarts,
      failedPromotions: c.failedStarts,
      notificationsDropped: this.notificationsDropped,
      listenerErrors: this.listenerErrors,
      redis: {
        project: o.project,
        strategy: o.strategy,
        priority: o.nodePriority,
        tickInterval: o.tickInterval,
        leaseTTL: o.leaseTTL,
        maxDrift: o.maxDrift,
        leader,
        connection: s.storeOk === undefined ? 'unknown' : s.storeOk ? 'ok' : 'failing',
        lastError: s.lastError,
        lastOkAgeMs: s.lastOkAt === undefined ? undefined : Math.max(0, now - s.lastOkAt),
        leaseAgeMs: s.phase === 'leader' && s.leaseOkSentAt !== undefined ? Math.max(0, now - s.leaseOkSentAt) : undefined,
        duplicateNodeId: s.duplicate,
        revisionExhausted: s.revisionExhausted !== undefined,
        ...c,
        metadata: this.#metadata,
        leaderMetadata: this.#followed?.metadata,
        metadataDropped: this.#metadataDropped,
      },
    };
  }

  /**
   * Whether this node is healthy in its role, as `failover-watch run --redis --health`'s
   * `GET /healthz` answers: the last lease operation succeeded and the node leads or stands by.
   */
  health(): Health {
    return judgeLeaseHealth(this.status());
  }

  /** One human line for diagnostics. */
  formatStatus(): string {
    const core = this.status();
    const st = core.redis;
    const parts = [`${core.instanceId}: ${core.role}${core.phase !== 'leader' && core.phase !== 'follower' && core.phase !== core.role ? ` (${core.phase})` : ''}, revision ${core.epoch}`];
    if (core.role === 'primary') {
      parts.push(`lease refreshed ${Math.round(st.leaseAgeMs ?? 0)} ms ago (steps down at ${st.maxDrift} ms)`);
    } else if (st.leader !== undefined) {
      parts.push(`following ${st.leader.nodeId} (revision ${st.leader.revision})`);
    } else if (core.role === 'secondary') {
      parts.push('no leader');
    }
    parts.push(st.strategy === 'priority' ? `priority strategy, priority ${st.priority}` : 'race strategy');
    if (st.connection === 'failing') parts.push(`Redis failing: ${st.lastError ?? 'unknown error'}`);
    if (st.duplicateNodeId) parts.push('another live node uses this nodeId');
    if (st.revisionExhausted) parts.push('not leading: no valid revision left (reset the revision, docs/REDIS.md)');
    return parts.join('; ');
  }

  // -------------------------------------------------------------------------------------------

  #dispatch(input: LeaseInput): void {
    this.#loop.dispatch(input);
  }

  #run(effect: LeaseEffect): void {
    switch (effect.type) {
      case 'op': {
        const { id, kind } = effect;
        const args = { eligible: effect.eligible, knownRevision: effect.knownRevision };
        this.#store[kind](args).then(
          (reply) => this.#dispatch({ type: 'opResult', id, reply }),
          (error: unknown) => this.#dispatch({ type: 'opFailed', id, detail: error instanceof Error ? error.message : String(error) }),
        );
        return;
      }
      case 'release': {
        const awaited = effect.awaited && effect.mayHold === true;
        this.#store.release(effect.reason, effect.deregister, effect.revision).then(
          (released) => this.#dispatch({ type: 'releaseResult', released, ok: true }),
          (error: unknown) => {
            const detail = error instanceof Error ? error.message : String(error);
            if (awaited) {
              this.#releaseError = new FailoverError(
                'ERR_FAILOVER_TRANSPORT',
                `closed, but the lease could not be released (${detail}); it expires within leaseTTL`,
                { cause: error },
              );
            }
            this.#dispatch({ type: 'releaseResult', released: false, ok: false, detail });
          },
        );
        return;
      }
      case 'callStart': {
        const { term, revision, reason } = effect;
        const signal = this.#signals.open(term);
        queueMicrotask(() =>
          callSettled(this.options.onPromote, { epoch: revision, reason, signal }, 'onPromote', (error) => this.#startSettled(term, error)),
        );
        return;
      }
      case 'abortStart':
        // Only the signal: the term's callbacks still settle (see #notify for the term's end).
        this.#signals.abort(effect.term, new FailoverError('ERR_FAILOVER_LIFECYCLE', `leadership lost (${effect.reason})`));
        return;
      case 'callStop': {
        const { term, revision, reason } = effect;
        queueMicrotask(() =>
          callSettled(this.options.onDemote, { epoch: revision, reason }, 'onDemote', (error) => {
            if (error !== undefined) this.#logger.error(`onDemote failed: ${String(error)}`);
            this.#dispatch({ type: 'stopSettled', term });
          }),
        );
        return;
      }
      case 'notify':
        this.#notify(effect.notification);
        return;
      case 'primaryChanged': {
        const event: PrimaryChangedEvent = { instanceId: effect.nodeId, epoch: effect.revision, priority: effect.priority, at: this.#loop.decidedAt };
        this.#followed = { instanceId: effect.nodeId, epoch: effect.revision, metadata: undefined };
        if (this.#store.readMetadata === undefined) this.#later(() => this.emitSafely('primaryChanged', event));
        else void this.#readLeaderMetadata(effect.nodeId, effect.revision, true, event);
        return;
      }
      case 'primaryLost': {
        const event: ElectionPrimaryLostEvent = {
          instanceId: effect.nodeId,
          epoch: effect.revision,
          cause: effect.cause,
          willPromote: effect.willPromote,
          reason: effect.why,
          at: this.#loop.decidedAt,
        };
        this.#later(() => this.emitSafely('primaryLost', event));
        return;
      }
      case 'log':
        this.#logger[effect.level](effect.message);
        return;
      case 'started':
        if (this.#startTimer !== undefined) this.#clock.clearTimer(this.#startTimer);
        this.#startTimer = undefined;
        this.#started.resolve();
        return;
      case 'close':
        void this.#store.close().then(
          () => this.#dispatch({ type: 'closed' }),
          () => this.#dispatch({ type: 'closed' }),
        );
        return;
    }
  }

  /**
   * Reads the followed leader's metadata; emits `primaryChanged` with it (`announce`), or
   * `primaryMetadataChanged` when it differs from the last read. A malformed one is counted.
   */
  async #readLeaderMetadata(nodeId: string, epoch: number, announce: boolean, event?: PrimaryChangedEvent): Promise<void> {
    let stored: StoredMetadata;
    let failed = false;
    try {
      stored = (await this.#store.readMetadata?.([nodeId]))?.[0];
    } catch (error) {
      this.#logger.debug(`reading ${nodeId}'s metadata failed: ${String(error)}`);
      failed = true;
    }
    const followed = this.#followed;
    const previous = followed?.metadata;
    if (stored === 'invalid') this.#metadataDropped++;
    // Dropped or unreadable metadata is no news: the last good read of this term stands (as over ZeroMQ).
    const metadata = stored === 'invalid' || failed ? (previous ?? NO_METADATA) : (stored ?? NO_METADATA);
    if (this.#finished || followed === undefined || followed.instanceId !== nodeId || followed.epoch !== epoch) return;
    this.#followed = { ...followed, metadata };
    if (announce && event !== undefined) {
      this.emitSafely('primaryChanged', { ...event, metadata });
    } else if (previous !== undefined && !sameMetadata(previous, metadata)) {
      this.emitSafely('primaryMetadataChanged', { instanceId: nodeId, epoch, metadata, at: this.#clock.wallNow() });
    }
  }

  /**
   * Replaces this node's metadata (validated like the option: throws `InvalidOptionError` naming
   * the key), stores it and announces it on the project's channel.
   */
  setMetadata(metadata: Readonly<Record<string, string>>): void {
    this.#metadata = resolveMetadata(metadata);
    void this.#store.writeMetadata?.(this.#metadata).catch((error: unknown) => this.#logger.warn(`storing metadata failed: ${String(error)}`));
  }

  /** This node's own metadata. */
  get metadata(): Metadata {
    return this.#metadata;
  }

  #startSettled(term: number, error: unknown): void {
    // The term's controller stays until the role ends: the signal aborts then (see #notify).
    const detail = error === undefined ? undefined : error instanceof Error ? error.message : String(error);
    if (detail !== undefined) this.#lastStartError = detail;
    this.#dispatch({ type: 'startSettled', term, ok: error === undefined, ...(detail === undefined ? {} : { detail }) });
  }

  #notify(n: LeaseNotification): void {
    if (n.from === 'primary') {
      // The term ended: its signal aborts, also when onPromote already resolved (the contract).
      this.#signals.abortAll(new FailoverError('ERR_FAILOVER_LIFECYCLE', `leadership lost (${n.reason})`));
    }
    const change: RoleChange = {
      from: n.from,
      to: n.to,
      epoch: n.epoch,
      reason: n.reason,
      // The step that decided it (see StepLoop.decidedAt).
      at: this.#loop.decidedAt,
      instanceId: this.options.nodeId,
    };
    // A leader (or a stopped node) follows nobody: status().leaderMetadata is undefined.
    if (n.to !== 'secondary') this.#followed = undefined;
    this.pushChange(change);
    this.#later(() => this.emitSafely('roleChanged', change));
    if (n.reason === 'start-failed' && n.from === 'primary') {
      // The contract's promotionFailed: the lease is handed back, the node holds off for leaseTTL.
      const failed: ElectionPromotionFailedEvent = {
        epoch: n.epoch,
        reason: 'start-failed',
        error: this.#lastStartError ?? 'onPromote rejected',
        retryInMs: this.options.leaseTTL,
        at: change.at,
      };
      this.#later(() => this.emitSafely('promotionFailed', failed));
    }
  }

  /** Delivers notifications after the step, in order, never inside the machine's step. */
  #later(deliver: () => void): void {
    this.#deliveries.push(deliver);
  }

  protected override onListenerError(event: string, error: unknown): void {
    this.#logger.warn(`a ${event} listener threw: ${error instanceof Error ? error.message : String(error)}`);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#forgetSignal();
    this.#loop.stop();
    if (this.#startTimer !== undefined) this.#clock.clearTimer(this.#startTimer);
    this.#startTimer = undefined;
    this.#signals.abortAll();
    this.endChangeStreams();
    this.#started.reject(new FailoverError('ERR_FAILOVER_LIFECYCLE', 'the cluster was closed before its first role settled'));
    this.#closed.resolve();
  }
}
