/**
 * The PostgreSQL election: the role is a session advisory lock held by the leader's own
 * connection. Guarantees and limits (details in docs/POSTGRES.md):
 *
 * - at most one session holds the lock at a time (PostgreSQL's lock manager on one server);
 * - the epoch grows in the statement run right after the lock is held (a row of
 *   `<prefix>_election`), so it is a fencing token the application's tables can check;
 * - a leader whose process dies loses its connection, PostgreSQL releases the lock, and the
 *   standby blocked in `pg_advisory_lock` holds it in milliseconds: no lease to wait out;
 * - a leader that loses its connection steps down at once; one that cannot confirm its session
 *   within `maxDrift` steps down too, before the server ends its idle session
 *   (`idleSessionTimeout`) and lets another node lead;
 * - `stepDown()`/`shutdown()` release the lock after `onDemote` (bounded): the next node leads
 *   in milliseconds;
 * - `role`, `health()` and `status()` check the confirm age on the spot, so a process woken from
 *   a pause that reads its role before acting learns it lost first;
 * - priorities: a node that gets the lock while a node of strictly better priority is queued for
 *   it gives the lock back unused (no epoch spent); no preemption of a working leader;
 * - listeners run after the state changed, asynchronously, and their throws are caught.
 *
 * Each node keeps two connections: the lock connection (it waits for, holds and confirms the
 * lock, and bumps the epoch) and a control connection (LISTEN for leadership notices, presence
 * rows for `liveNodes()`, the event history).
 *
 * @module
 */
import pg from 'pg';
import type { Client as PgClient, ClientConfig, Notification } from 'pg';
import { hostname } from 'node:os';
import type {
  Election,
  ElectionEvents,
  ElectionNode,
  ElectionPrimaryChangedEvent,
  ElectionPrimaryMetadataChangedEvent,
  ElectionRole,
  ElectionRoleChange,
  ElectionStatusCore,
  Health,
} from '../election/contract.js';
import { FailoverError } from '../errors.js';
import { Notifier } from '../runtime/notifier.js';
import { prefixed, silentLogger, type Logger } from '../runtime/logger.js';
import { resolvePostgresOptions, type PostgresElectionOptions, type ResolvedPostgresOptions } from './options.js';
import { lockKey, postgresSql, setupKey, type PostgresSql } from './sql.js';
import { resolveMetadata } from '../metadata-option.js';
import { checkMetadata, NO_METADATA, sameMetadata, type Metadata } from '../protocol/metadata.js';
import { withDeadline } from '../runtime/deadline.js';

/** Finer than the role. */
export type PostgresPhase =
  | 'idle'
  | 'connecting'
  | 'waiting'
  | 'electing'
  | 'promoting'
  | 'leading'
  | 'demoting'
  | 'holding-off'
  | 'disabled'
  | 'stopped';

/** A recorded leadership event (newest first in `events()`). */
export interface PostgresLeadershipEvent {
  readonly instanceId: string;
  readonly action: 'elected' | 'released';
  readonly epoch: number;
  /** `elected`: `startup`, `vacant`, `handover`; `released`: `stepdown`, `shutdown`, `disabled`, `failed-promotion`. */
  readonly reason: string | undefined;
  /** Server time, ms since the Unix epoch. */
  readonly at: number;
}

/** What `status()` returns: the contract's core and the `postgres` section. */
export interface PostgresElectionStatus extends ElectionStatusCore {
  readonly postgres: {
    readonly project: string;
    readonly tablePrefix: string;
    /** `ok` after a successful statement on the lock connection, `failing` after a failed one. */
    readonly connection: 'unknown' | 'ok' | 'failing';
    readonly lastError: string | undefined;
    /** On a primary: ms since the send time of its last successful confirm (it steps down at `maxDrift`). */
    readonly confirmAgeMs: number | undefined;
    readonly confirmInterval: number;
    readonly maxDrift: number;
    readonly idleSessionTimeout: number;
    readonly confirms: number;
    readonly driftStepDowns: number;
    readonly connectionsLost: number;
    readonly connects: number;
    /** Notices on the channel that were not valid JSON of the expected shape: dropped. */
    readonly noticesDropped: number;
    /** Times this node got the lock and gave it back unused to a queued node of better priority. */
    readonly yields: number;
    readonly priority: number;
    /** This node's own metadata. */
    readonly metadata: Readonly<Record<string, string>>;
    /** The followed leader's metadata as last read; undefined while leading or following nobody. */
    readonly leaderMetadata: Readonly<Record<string, string>> | undefined;
    /** Stored metadata that broke the rules when read (dropped, never thrown). */
    readonly metadataDropped: number;
  };
}

/** The election's events: the contract's and `primaryMetadataChanged`. */
export interface PostgresElectionEvents extends ElectionEvents {
  /** The leader this node follows stored other metadata. */
  primaryMetadataChanged: (event: ElectionPrimaryMetadataChangedEvent) => void;
}

/**
 * Reads a stored metadata column: NULL is none, anything that is not JSON of a map within the
 * limits of `protocol/metadata.ts` is `'invalid'` (dropped by the caller, counted).
 */
export function parseStoredMetadata(text: unknown): Metadata | 'invalid' {
  if (text === null || text === undefined) return NO_METADATA;
  if (typeof text !== 'string') return 'invalid';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'invalid';
  }
  const checked = checkMetadata(parsed);
  return checked.ok ? checked.metadata : 'invalid';
}

/** Dependencies a test may replace. @internal */
export interface PostgresElectionDeps {
  /** Builds a pg client (tests). */
  readonly createClient?: (config: ClientConfig) => PgClient;
}

const MAX_EPOCH = Number.MAX_SAFE_INTEGER;
/** Consecutive yields to better queued nodes before a node leads anyway (a bound, never reached in practice). */
const MAX_YIELDS = 32;

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

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Hides the password of a URL for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_m, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:***` : auth}@`);
}

/** One term: from the lock held to the lock released or the connection gone. */
interface Term {
  readonly epoch: number;
  readonly client: PgClient;
  readonly controller: AbortController;
  /** Resolves once the term fully ended (onDemote ran, lock released or connection closed). */
  readonly ended: Deferred<void>;
  ending: boolean;
  promoted: boolean;
  promoteSettled: Promise<boolean>;
  lastOkSentAt: number;
  confirmInFlight: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * An election on a PostgreSQL server. Construct it (the options are validated at once), then
 * `start()`.
 *
 * @example
 * import { PostgresElection } from 'failover-watch/postgres';
 * const election = new PostgresElection({
 *   project: 'billing',
 *   connectionString: process.env.DATABASE_URL,
 *   onPromote: async ({ epoch, signal }) => { await work(epoch, signal); },
 * });
 * await election.start();
 * process.on('SIGTERM', () => void election.shutdown());
 */
export class PostgresElection
  extends Notifier<PostgresElectionEvents, ElectionRoleChange>
  implements Election<PostgresElectionStatus, PostgresElectionEvents>
{
  readonly backend = 'postgres' as const;
  readonly options: ResolvedPostgresOptions;

  /** The contract's view of the event names (`primaryMetadataChanged` is this backend's own). */
  override eventNames(): Array<keyof ElectionEvents> {
    return super.eventNames() as Array<keyof ElectionEvents>;
  }

  readonly #sql: PostgresSql;
  readonly #key: string;
  readonly #logger: Logger;
  readonly #createClient: (config: ClientConfig) => PgClient;

  #role: ElectionRole = 'starting';
  #phase: PostgresPhase = 'idle';
  #epoch = 0;
  #enabled: boolean;
  #leader: { instanceId: string; epoch: number } | undefined;
  #suspected = false;
  #term: Term | undefined;
  #lockClient: PgClient | undefined;
  #ctlClient: PgClient | undefined;
  /** The control loop's connection from the moment it connects (set up or not): what shutdown ends. */
  #ctlConnection: PgClient | undefined;
  #ctlTimer: NodeJS.Timeout | undefined;
  #wake: Deferred<void> = deferred<void>();
  #sleepTimer: NodeJS.Timeout | undefined;
  #holdoffUntil = 0;
  #lastReleaseNotice: { instanceId: string; epoch: number } | undefined;
  #schemaReady = false;
  #started = false;
  #firstSettled = deferred<void>();
  /** Resolves once the control connection is up for the first time (liveNodes, events). */
  #ctlReady = deferred<void>();
  #closing = false;
  #shutdownResult: Promise<void> | undefined;
  #campaign: Promise<void> = Promise.resolve();
  #control: Promise<void> = Promise.resolve();

  #connection: 'unknown' | 'ok' | 'failing' = 'unknown';
  #lastError: string | undefined;
  #promotions = 0;
  #demotions = 0;
  #failedPromotions = 0;
  #confirms = 0;
  #driftStepDowns = 0;
  #connectionsLost = 0;
  #connects = 0;
  #noticesDropped = 0;
  #yields = 0;
  /** This node's metadata (the option, then `setMetadata()`). */
  #metadata: Metadata;
  /** The followed leader's metadata as last read in its term (undefined before the first read). */
  #leaderMetadata: Metadata | undefined;
  #metadataDropped = 0;
  /** The last malformed stored metadata read (node and text), counted once. */
  #lastDropped: string | undefined;
  /** A setMetadata() whose notice did not go out (no control connection): sent on the next connect. */
  #metadataUntold = false;
  /** Metadata reads and the notifications after them, in order. */
  #metadataReads: Promise<void> = Promise.resolve();

  /** Validates the options (throws `InvalidOptionError`); connects nothing. */
  constructor(options: PostgresElectionOptions, deps: PostgresElectionDeps = {}) {
    super();
    this.options = resolvePostgresOptions(options, `${hostname()}-${process.pid}`);
    this.#sql = postgresSql(this.options.tablePrefix);
    this.#key = lockKey(this.options.project);
    this.#logger = prefixed(this.options.logger ?? silentLogger, this.options.instanceId);
    this.#enabled = this.options.enabled;
    this.#metadata = this.options.metadata;
    this.#createClient = deps.createClient ?? ((config) => new pg.Client(config));
    // A start() that rejects must not leave an unhandled rejection behind.
    this.#firstSettled.promise.catch(() => undefined);
    this.#ctlReady.promise.catch(() => undefined);
  }

  get instanceId(): string {
    return this.options.instanceId;
  }
  /**
   * The role, checked on the spot: a primary whose last confirm was sent `maxDrift` ago or more
   * (e.g. a process woken from SIGSTOP before its timers ran) steps down right here, so an
   * application that reads `role` (or `health()`, `status()`) before it acts learns it lost first.
   */
  get role(): ElectionRole {
    this.#checkDrift();
    return this.#role;
  }
  get epoch(): number {
    return this.#epoch;
  }
  get enabled(): boolean {
    return this.#enabled;
  }
  /** The advisory lock key (a bigint as a decimal string). */
  get lockKey(): string {
    return this.#key;
  }

  /** Joins the election; resolves once the first role is settled. */
  async start(): Promise<void> {
    if (this.#started) throw new FailoverError('ERR_FAILOVER_LIFECYCLE', 'start() was already called');
    this.#started = true;
    const timer = setTimeout(() => {
      const error = new FailoverError(
        'ERR_FAILOVER_TIMEOUT',
        `no answer from ${redactUrl(this.options.connectionString)} within startTimeout (${this.options.startTimeout} ms): ${this.#lastError ?? 'no error'}`,
      );
      this.#firstSettled.reject(error);
      this.#ctlReady.reject(error);
    }, this.options.startTimeout);
    this.#campaign = this.#runCampaign();
    this.#control = this.#runControl();
    try {
      await Promise.all([this.#firstSettled.promise, this.#ctlReady.promise]);
    } catch (error) {
      await this.shutdown();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Leaves the election: a primary runs `onDemote` (bounded) and releases the lock at once. */
  shutdown(): Promise<void> {
    this.#shutdownResult ??= this.#shutdown();
    return this.#shutdownResult;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  /** Hands the role over: onDemote, then the lock released; this node queues again after `stepDownHoldoff`. */
  stepDown(): void {
    if (this.#term === undefined || this.#closing) return;
    this.#holdoffUntil = performance.now() + this.options.stepDownHoldoff;
    this.#endTerm(this.#term, 'stepdown', true);
  }

  setEnabled(enabled: boolean): void {
    if (typeof enabled !== 'boolean' || enabled === this.#enabled) return;
    this.#enabled = enabled;
    this.#logger.info(`failover ${enabled ? 'enabled' : 'disabled'}`);
    if (!enabled) {
      if (this.#term !== undefined) this.#endTerm(this.#term, 'disabled', true);
      else this.#dropLockClient();
    }
    this.#kick();
    void this.#presence();
  }

  roleChanges(): AsyncIterableIterator<ElectionRoleChange> {
    return this.openChangeStream(this.options.notificationBuffer);
  }

  status(): PostgresElectionStatus {
    this.#checkDrift();
    const term = this.#term;
    return {
      backend: 'postgres',
      instanceId: this.instanceId,
      role: this.#role,
      phase: this.#phase,
      epoch: this.#epoch,
      enabled: this.#enabled,
      primary: this.#role === 'primary' ? { instanceId: this.instanceId, epoch: this.#epoch } : this.#leader,
      primarySuspected: this.#suspected,
      promotions: this.#promotions,
      demotions: this.#demotions,
      failedPromotions: this.#failedPromotions,
      notificationsDropped: this.notificationsDropped,
      listenerErrors: this.listenerErrors,
      postgres: {
        project: this.options.project,
        tablePrefix: this.options.tablePrefix,
        connection: this.#connection,
        lastError: this.#lastError,
        confirmAgeMs: term === undefined ? undefined : performance.now() - term.lastOkSentAt,
        confirmInterval: this.options.confirmInterval,
        maxDrift: this.options.maxDrift,
        idleSessionTimeout: this.options.idleSessionTimeout,
        confirms: this.#confirms,
        driftStepDowns: this.#driftStepDowns,
        connectionsLost: this.#connectionsLost,
        connects: this.#connects,
        noticesDropped: this.#noticesDropped,
        yields: this.#yields,
        priority: this.options.priority,
        metadata: this.#metadata,
        leaderMetadata: this.#role === 'secondary' && this.#leader !== undefined ? this.#leaderMetadata : undefined,
        metadataDropped: this.#metadataDropped,
      },
    };
  }

  /**
   * Replaces this node's metadata (validated like the option: throws `InvalidOptionError` naming
   * the key): writes it into the presence row, then NOTIFYs the others, who read it again.
   */
  setMetadata(metadata: Readonly<Record<string, string>>): void {
    this.#metadata = resolveMetadata(metadata);
    this.#metadataUntold = true;
    void this.#presence().then(() => this.#tellMetadata());
  }

  /** NOTIFYs the others that this node's metadata changed (its presence row holds it); never rejects. */
  async #tellMetadata(): Promise<void> {
    const client = this.#ctlClient;
    if (client === undefined || this.#closing) return;
    try {
      this.#metadataUntold = false;
      await client.query(this.#sql.metadataNotice, [this.options.project, this.instanceId]);
    } catch (error) {
      this.#metadataUntold = true;
      this.#logger.debug(`metadata notice: ${message(error)}`);
    }
  }

  /** This node's own metadata. */
  get metadata(): Readonly<Record<string, string>> {
    return this.#metadata;
  }

  health(): Health {
    this.#checkDrift();
    const bad = (reason: string): Health => ({ ok: false, status: 503, reason });
    const good = (reason: string): Health => ({ ok: true, status: 200, reason });
    switch (this.#role) {
      case 'starting':
        return bad('starting');
      case 'stopped':
        return bad('stopped');
      case 'primary': {
        const age = this.#term === undefined ? Infinity : performance.now() - this.#term.lastOkSentAt;
        return age < this.options.maxDrift
          ? good(`primary, epoch ${this.#epoch}`)
          : bad(`own confirm ${Math.round(age)} ms old (limit ${this.options.maxDrift} ms)`);
      }
      case 'secondary':
        if (this.#connection === 'failing') return bad(`database unreachable: ${this.#lastError ?? 'unknown'}`);
        return good(this.#leader === undefined ? 'secondary, no primary known' : `following ${this.#leader.instanceId}`);
    }
  }

  /** The nodes with a fresh presence row (3 presence intervals), the lock holder marked primary. */
  async liveNodes(): Promise<ElectionNode[]> {
    const client = this.#ctlClient;
    if (client === undefined) throw new FailoverError('ERR_FAILOVER_LIFECYCLE', 'not connected to PostgreSQL');
    // Own row first, so that a node just started lists itself.
    await this.#presence();
    const nodes = await client.query<{ node_id: string; eligible: boolean; priority: number; metadata: string | null; last_seen: number }>(this.#sql.liveNodes, [
      this.options.project,
      this.options.presenceInterval * 3,
    ]);
    const leader = await client.query<{ epoch: string; leader: string; held: boolean }>(this.#sql.leader, [this.options.project, this.#key]);
    const row = leader.rows[0];
    const holder = row !== undefined && row.held ? row.leader : undefined;
    const epoch = row === undefined ? undefined : Number(row.epoch);
    return nodes.rows.map((n) => ({
      instanceId: n.node_id,
      role: n.node_id === holder ? 'primary' : 'secondary',
      priority: Number(n.priority),
      epoch: n.node_id === holder ? epoch : undefined,
      lastSeenAt: Number(n.last_seen),
      self: n.node_id === this.instanceId,
      eligible: n.eligible,
      metadata: n.node_id === this.instanceId ? this.#metadata : ((m) => (m === 'invalid' ? NO_METADATA : m))(parseStoredMetadata(n.metadata)),
    }));
  }

  /** The newest `limit` leadership events of the project, newest first. */
  async events(limit = 20): Promise<PostgresLeadershipEvent[]> {
    const client = this.#ctlClient;
    if (client === undefined) throw new FailoverError('ERR_FAILOVER_LIFECYCLE', 'not connected to PostgreSQL');
    const r = await client.query<{ node_id: string; action: 'elected' | 'released'; epoch: string; reason: string | null; at: number }>(
      this.#sql.events_,
      [this.options.project, limit],
    );
    return r.rows.map((e) => ({ instanceId: e.node_id, action: e.action, epoch: Number(e.epoch), reason: e.reason ?? undefined, at: Number(e.at) }));
  }

  // ---------------------------------------------------------------------------------------------
  // Connections

  #clientConfig(kind: 'lock' | 'ctl'): ClientConfig {
    const o = this.options;
    const base: ClientConfig = o.clientConfig ?? { connectionString: o.connectionString };
    const settings: string[] = ['-c statement_timeout=0', '-c lock_timeout=0'];
    if (kind === 'lock') {
      if (o.idleSessionTimeout > 0) settings.push(`-c idle_session_timeout=${o.idleSessionTimeout}`);
      if (o.tcpUserTimeout > 0) settings.push(`-c tcp_user_timeout=${o.tcpUserTimeout}`);
      settings.push(`-c tcp_keepalives_idle=${Math.max(1, Math.ceil(o.keepAliveIdle / 1000))}`, '-c tcp_keepalives_interval=1', '-c tcp_keepalives_count=3');
    }
    return {
      ...base,
      application_name: `failover-watch ${kind} ${o.instanceId}`.slice(0, 63),
      keepAlive: true,
      keepAliveInitialDelayMillis: o.keepAliveIdle,
      connectionTimeoutMillis: o.connectTimeout,
      options: [base.options, ...settings].filter((s) => s !== undefined && s !== '').join(' '),
    };
  }

  async #connect(kind: 'lock' | 'ctl'): Promise<PgClient> {
    const client = this.#createClient(this.#clientConfig(kind));
    // Until the owner installs its own handlers, an error must not crash the process.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      void client.end().catch(() => undefined);
      throw error;
    }
    this.#connects++;
    return client;
  }

  #dropLockClient(): void {
    const client = this.#lockClient;
    this.#lockClient = undefined;
    if (client !== undefined) void client.end().catch(() => undefined);
  }

  /** Wakes the campaign loop out of a wait. */
  #kick(): void {
    if (this.#sleepTimer !== undefined) clearTimeout(this.#sleepTimer);
    this.#sleepTimer = undefined;
    this.#wake.resolve();
    this.#wake = deferred<void>();
  }

  /** Waits `ms` (or until kicked). */
  #sleep(ms: number): Promise<void> {
    const wake = this.#wake.promise;
    return new Promise<void>((resolve) => {
      this.#sleepTimer = setTimeout(resolve, Math.max(0, ms));
      void wake.then(resolve);
    });
  }

  #failing(error: unknown): void {
    this.#connection = 'failing';
    this.#lastError = message(error);
  }

  // ---------------------------------------------------------------------------------------------
  // The campaign: connect, wait for the lock, lead, repeat until shutdown.

  async #runCampaign(): Promise<void> {
    while (!this.#closing) {
      if (!this.#enabled) {
        this.#phase = 'disabled';
        this.#settleSecondary('disabled');
        await this.#sleep(60_000);
        continue;
      }
      const holdoff = this.#holdoffUntil - performance.now();
      if (holdoff > 0) {
        this.#phase = 'holding-off';
        await this.#sleep(holdoff);
        continue;
      }
      this.#phase = 'connecting';
      let client: PgClient;
      try {
        client = await this.#connect('lock');
      } catch (error) {
        this.#failing(error);
        this.#logger.warn(`cannot connect to ${redactUrl(this.options.connectionString)}: ${message(error)}`);
        await this.#sleep(this.options.reconnectInterval);
        continue;
      }
      if (this.#closing || !this.#enabled) {
        void client.end().catch(() => undefined);
        continue;
      }
      this.#lockClient = client;
      const lost = deferred<string>();
      lost.promise.catch(() => undefined);
      const onLost = (why: string) => () => {
        lost.resolve(why);
        if (this.#term !== undefined && this.#term.client === client && !this.#term.ending) {
          this.#connectionsLost++;
          this.#failing(new Error(why));
          this.#endTerm(this.#term, 'lost', false);
        }
      };
      client.on('error', onLost('connection error'));
      client.on('end', onLost('connection closed'));
      try {
        await this.#ensureSchema(client);
        // Tell the others which backend queues for this node, and at what priority.
        await client.query(this.#sql.queued, [this.options.project, this.instanceId, process.pid, hostname(), this.options.priority, JSON.stringify(this.#metadata)]);
        let locked = (await client.query<{ locked: boolean }>(this.#sql.tryLock, [this.#key])).rows[0]?.locked === true;
        this.#connection = 'ok';
        // Each yield hands the lock to a node queued ahead in priority; bounded, then lead anyway.
        for (let yields = 0; ; yields++) {
          if (!locked) {
            this.#settleSecondary('startup');
            this.#phase = 'waiting';
            await client.query(this.#sql.waitLock, [this.#key]);
          }
          if (this.#closing || !this.#enabled) throw new Error('left the election while waiting');
          if (yields >= MAX_YIELDS) break;
          const better = (
            await client.query<{ node_id: string; priority: number }>(this.#sql.betterWaiter, [
              this.options.project,
              this.#key,
              this.options.priority,
              this.instanceId,
              this.options.presenceInterval * 3,
            ])
          ).rows[0];
          if (better === undefined) break;
          this.#yields++;
          this.#logger.debug(`${better.node_id} (priority ${better.priority}) is queued: giving the lock back unused`);
          await client.query(this.#sql.yieldLock, [this.#key]);
          locked = false;
        }
        await this.#lead(client);
      } catch (error) {
        // undefined_table: another server behind the same address (a failover to a database
        // without the tables): check the schema again on the next connection.
        if ((error as { code?: unknown } | undefined)?.code === '42P01') this.#schemaReady = false;
        if (!this.#closing && this.#enabled) {
          this.#failing(error);
          this.#logger.warn(`lock connection: ${message(error)}`);
        }
      }
      if (this.#lockClient === client) this.#lockClient = undefined;
      await client.end().catch(() => undefined);
      if (!this.#closing && this.#connection === 'failing') await this.#sleep(this.options.reconnectInterval);
    }
  }

  async #ensureSchema(client: PgClient): Promise<void> {
    if (this.#schemaReady) return;
    const missing = (await client.query<{ missing: boolean }>(this.#sql.missingTables)).rows[0]?.missing !== false;
    if (missing) await client.query(this.#sql.createTables(setupKey(this.options.tablePrefix)));
    this.#schemaReady = true;
  }

  /** The lock is held on `client`: bump the epoch, promote, confirm until the term ends. */
  async #lead(client: PgClient): Promise<void> {
    this.#phase = 'electing';
    const reason =
      this.#role === 'starting'
        ? 'startup'
        : this.#lastReleaseNotice !== undefined && this.#leader !== undefined && this.#lastReleaseNotice.epoch === this.#leader.epoch
          ? 'handover'
          : 'vacant';
    const sentAt = performance.now();
    const row = (await client.query<{ epoch: string }>(this.#sql.elect, [this.options.project, this.instanceId, reason, this.options.priority])).rows[0];
    const epoch = Number(row?.epoch);
    if (!Number.isSafeInteger(epoch) || epoch < 1 || epoch > MAX_EPOCH) {
      // No valid fencing token is left: give the lock back unused and wait for an operator.
      await client.query(this.#sql.unlock, [this.options.project, this.instanceId, 'epoch-exhausted', 0, this.#key]);
      this.#logger.error(`the epoch in ${this.#sql.election} is not a valid token (${row?.epoch}); reset it (docs/POSTGRES.md)`);
      this.#settleSecondary('epoch-exhausted');
      this.#holdoffUntil = performance.now() + 10 * this.options.promotionRetry + 1000;
      return;
    }
    // The term's own token, from the database: lower than one seen before only after the
    // election row was lost (a failover to a database without it, docs/POSTGRES.md).
    this.#epoch = epoch;
    this.#suspected = false;
    const term: Term = {
      epoch,
      client,
      controller: new AbortController(),
      ended: deferred<void>(),
      ending: false,
      promoted: false,
      promoteSettled: Promise.resolve(false),
      lastOkSentAt: sentAt,
      confirmInFlight: false,
      timer: undefined,
    };
    this.#term = term;
    this.#phase = 'promoting';
    this.#scheduleConfirm(term);
    term.promoteSettled = this.#callPromote(term, reason);
    const ok = await term.promoteSettled;
    if (ok && !term.ending) {
      term.promoted = true;
      this.#phase = 'leading';
      this.#promotions++;
      this.#change(this.#role, 'primary', epoch, reason);
      this.#firstSettled.resolve();
    } else if (!ok && !term.ending) {
      this.#holdoffUntil = performance.now() + this.options.promotionRetry;
      this.#endTerm(term, 'failed-promotion', true);
    }
    await term.ended.promise;
  }

  async #callPromote(term: Term, reason: string): Promise<boolean> {
    const onPromote = this.options.onPromote;
    try {
      await onPromote?.({ epoch: term.epoch, reason, signal: term.controller.signal });
      return true;
    } catch (error) {
      this.#failedPromotions++;
      const event = { epoch: term.epoch, reason, error: message(error), retryInMs: this.options.promotionRetry, at: Date.now() };
      this.#logger.warn(`onPromote failed (epoch ${term.epoch}): ${event.error}`);
      setImmediate(() => this.emitSafely('promotionFailed', event));
      this.#settleSecondary('failed-promotion');
      return false;
    }
  }

  /** Steps down at once (`drift`) when the current term's last successful confirm is too old. */
  #checkDrift(): void {
    const term = this.#term;
    if (term === undefined || term.ending) return;
    const age = performance.now() - term.lastOkSentAt;
    if (age < this.options.maxDrift) return;
    this.#driftStepDowns++;
    this.#failing(new Error(`no confirm for ${Math.round(age)} ms (maxDrift ${this.options.maxDrift} ms)`));
    this.#logger.warn(`no confirm for ${Math.round(age)} ms (maxDrift ${this.options.maxDrift} ms): stepping down`);
    this.#endTerm(term, 'drift', false);
  }

  #scheduleConfirm(term: Term): void {
    term.timer = setTimeout(() => this.#confirm(term), this.options.confirmInterval);
  }

  /** Checks the drift, then confirms the session and the epoch with a deadline of what drift is left. */
  #confirm(term: Term): void {
    term.timer = undefined;
    if (term.ending) return;
    this.#checkDrift();
    if (term.ending) return;
    const now = performance.now();
    if (!term.confirmInFlight) {
      term.confirmInFlight = true;
      const sentAt = now;
      term.client.query<{ epoch: string; leader: string }>(this.#sql.confirm, [this.options.project]).then(
        (r) => {
          term.confirmInFlight = false;
          if (term.ending) return;
          const row = r.rows[0];
          if (row === undefined || Number(row.epoch) !== term.epoch || row.leader !== this.instanceId) {
            this.#logger.warn(`the election row shows ${row?.leader} at epoch ${row?.epoch}, not this term (${term.epoch}): stepping down`);
            this.#endTerm(term, 'lost', false);
            return;
          }
          this.#confirms++;
          this.#connection = 'ok';
          term.lastOkSentAt = Math.max(term.lastOkSentAt, sentAt);
        },
        (error: unknown) => {
          term.confirmInFlight = false;
          if (term.ending) return;
          this.#failing(error);
          this.#endTerm(term, 'lost', false);
        },
      );
    }
    // Wake at the next interval, or at the drift deadline if that comes first.
    const untilDrift = term.lastOkSentAt + this.options.maxDrift - now;
    term.timer = setTimeout(() => this.#confirm(term), Math.max(1, Math.min(this.options.confirmInterval, untilDrift)));
  }

  /**
   * Ends `term`: aborts onPromote's signal at once, reports the demotion, runs onDemote (bounded),
   * then releases the lock (`graceful`, on a healthy connection) or closes the connection.
   */
  #endTerm(term: Term, reason: string, graceful: boolean): void {
    if (term.ending) return;
    term.ending = true;
    if (term.timer !== undefined) clearTimeout(term.timer);
    term.timer = undefined;
    term.controller.abort(new FailoverError('ERR_FAILOVER_LIFECYCLE', `primary role lost (${reason})`));
    // A connection we cannot trust is closed first: that alone releases the lock server-side.
    if (!graceful) void term.client.end().catch(() => undefined);
    this.#phase = 'demoting';
    if (term.promoted) {
      this.#demotions++;
      this.#change('primary', this.#closing ? 'stopped' : 'secondary', term.epoch, reason);
    }
    void (async () => {
      const promoted = await term.promoteSettled;
      if (promoted) await this.#callDemote(term.epoch, reason);
      if (graceful) {
        try {
          await withDeadline(
            term.client.query(this.#sql.unlock, [this.options.project, this.instanceId, reason, term.epoch, this.#key]),
            this.options.connectTimeout,
          );
        } catch (error) {
          this.#logger.warn(`releasing the lock failed (${message(error)}): closing the connection`);
        }
      }
      await term.client.end().catch(() => undefined);
      if (this.#term === term) this.#term = undefined;
      term.ended.resolve();
    })();
  }

  async #callDemote(epoch: number, reason: string): Promise<void> {
    const onDemote = this.options.onDemote;
    if (onDemote === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => onDemote({ epoch, reason })),
        new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            this.#logger.warn(`onDemote still running after ${this.options.demoteTimeout} ms: abandoned`);
            resolve();
          }, this.options.demoteTimeout);
        }),
      ]);
    } catch (error) {
      this.#logger.error(`onDemote failed: ${message(error)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  #settleSecondary(reason: string): void {
    if (this.#role === 'starting') this.#change('starting', 'secondary', this.#epoch, reason);
    this.#firstSettled.resolve();
  }

  /** The one funnel of role changes. */
  #change(from: ElectionRole, to: ElectionRole, epoch: number, reason: string): void {
    if (from === to) return;
    this.#role = to;
    const change: ElectionRoleChange = { from, to, epoch, reason, at: Date.now(), instanceId: this.instanceId };
    this.#logger.info(`${from} -> ${to} (epoch ${epoch}, ${reason})`);
    this.pushChange(change);
    setImmediate(() => this.emitSafely('roleChanged', change));
  }

  // ---------------------------------------------------------------------------------------------
  // The control connection: notices, presence, history.

  async #runControl(): Promise<void> {
    while (!this.#closing) {
      let client: PgClient;
      try {
        client = await this.#connect('ctl');
      } catch (error) {
        this.#logger.debug(`control connection: ${message(error)}`);
        await this.#sleepCtl();
        continue;
      }
      if (this.#closing) {
        await client.end().catch(() => undefined);
        break;
      }
      this.#ctlConnection = client;
      const gone = deferred<void>();
      client.on('error', () => gone.resolve());
      client.on('end', () => gone.resolve());
      client.on('notification', (n) => this.#onNotice(n));
      try {
        await this.#ensureSchema(client);
        await client.query(`LISTEN ${this.#sql.channel}`);
        this.#ctlClient = client;
        await this.#readLeader(client);
        await this.#presence();
        // A setMetadata() while this connection was down (or not yet up) wrote and told nobody.
        if (this.#metadataUntold) await this.#tellMetadata();
        this.#ctlReady.resolve();
        // A shutdown that came while this connection was set up has ended it, or ends it next.
        if (!this.#closing) {
          this.#ctlTimer = setInterval(() => void this.#presence(), this.options.presenceInterval);
          await gone.promise;
        }
      } catch (error) {
        if ((error as { code?: unknown } | undefined)?.code === '42P01') this.#schemaReady = false;
        this.#logger.debug(`control connection: ${message(error)}`);
      }
      if (this.#ctlTimer !== undefined) clearInterval(this.#ctlTimer);
      this.#ctlTimer = undefined;
      if (this.#ctlClient === client) this.#ctlClient = undefined;
      if (this.#ctlConnection === client) this.#ctlConnection = undefined;
      await client.end().catch(() => undefined);
      if (!this.#closing) await this.#sleepCtl();
    }
  }

  #ctlSleep: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  #sleepCtl(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#ctlSleep = undefined;
        resolve();
      }, this.options.reconnectInterval);
      this.#ctlSleep = { timer, resolve };
    });
  }

  async #readLeader(client: PgClient): Promise<void> {
    const row = (
      await client.query<{ epoch: string; leader: string; held: boolean; priority: number | null }>(this.#sql.leader, [this.options.project, this.#key])
    ).rows[0];
    if (row === undefined || !row.held) return;
    this.#follow(row.leader, Number(row.epoch), row.priority ?? undefined);
    // A reconnect may have missed a metadata notice of the same leader: read it again.
    this.#metadataNotice(row.leader);
  }

  #presenceRun: Promise<void> | undefined;
  #presenceAgain = false;
  /**
   * Writes the presence row; one write at a time (a paused server must not pile up queries): a
   * call during a write asks for one more write after it (setEnabled's new flag) and shares it.
   */
  #presence(): Promise<void> {
    if (this.#presenceRun !== undefined) {
      this.#presenceAgain = true;
      return this.#presenceRun;
    }
    this.#presenceRun = (async () => {
      for (let i = 0; i < 3; i++) {
        this.#presenceAgain = false;
        await this.#writePresence();
        if (!this.#presenceAgain || this.#closing) break;
      }
    })().finally(() => {
      this.#presenceRun = undefined;
    });
    return this.#presenceRun;
  }

  async #writePresence(): Promise<void> {
    const client = this.#ctlClient;
    if (client === undefined || this.#closing) return;
    try {
      await client.query(this.#sql.presence, [
        this.options.project,
        this.instanceId,
        this.#enabled,
        process.pid,
        hostname(),
        this.options.priority,
        JSON.stringify(this.#metadata),
      ]);
      if (this.#role === 'primary' && this.options.eventHistory > 0 && Math.random() < 0.1) {
        await client.query(this.#sql.trimEvents, [this.options.project, this.options.eventHistory]);
      }
    } catch (error) {
      this.#logger.debug(`presence: ${message(error)}`);
    }
  }

  #onNotice(n: Notification): void {
    let notice: { action?: unknown; project?: unknown; node?: unknown; epoch?: unknown; reason?: unknown; priority?: unknown };
    try {
      notice = JSON.parse(n.payload ?? '') as typeof notice;
    } catch {
      this.#noticesDropped++;
      return;
    }
    if (
      typeof notice === 'object' &&
      notice !== null &&
      notice.action === 'metadata' &&
      typeof notice.project === 'string' &&
      typeof notice.node === 'string'
    ) {
      if (notice.project === this.options.project) this.#metadataNotice(notice.node);
      return;
    }
    if (
      typeof notice !== 'object' ||
      notice === null ||
      (notice.action !== 'elected' && notice.action !== 'released') ||
      typeof notice.project !== 'string' ||
      typeof notice.node !== 'string' ||
      typeof notice.epoch !== 'number' ||
      !Number.isSafeInteger(notice.epoch)
    ) {
      this.#noticesDropped++;
      return;
    }
    if (notice.project !== this.options.project) return;
    if (notice.action === 'elected') {
      this.#follow(notice.node, notice.epoch, Number.isSafeInteger(notice.priority) ? (notice.priority as number) : undefined);
    } else this.#released(notice.node, notice.epoch, typeof notice.reason === 'string' ? notice.reason : 'released');
  }

  #follow(instanceId: string, epoch: number, priority?: number): void {
    if (epoch > this.#epoch && this.#term === undefined) this.#epoch = epoch;
    if (instanceId === this.instanceId) return;
    if (this.#leader !== undefined && this.#leader.instanceId === instanceId && this.#leader.epoch >= epoch) return;
    if (this.#leader !== undefined && this.#leader.epoch > epoch) return;
    this.#leader = { instanceId, epoch };
    this.#leaderMetadata = undefined;
    this.#suspected = false;
    const at = Date.now();
    // The leader's metadata is in its presence row (written before it queued for the lock).
    this.#afterMetadataRead(instanceId, (metadata) => {
      const event: ElectionPrimaryChangedEvent = { instanceId, epoch, priority, at, metadata };
      this.emitSafely('primaryChanged', event);
    });
  }

  /** A node stored other metadata: news when it is the leader followed. */
  #metadataNotice(node: string): void {
    const leader = this.#leader;
    if (leader === undefined || leader.instanceId !== node || node === this.instanceId) return;
    this.#afterMetadataRead(node, (metadata, previous) => {
      if (this.#leader !== leader || previous === undefined || sameMetadata(previous, metadata)) return;
      const event: ElectionPrimaryMetadataChangedEvent = { instanceId: leader.instanceId, epoch: leader.epoch, metadata, at: Date.now() };
      this.emitSafely('primaryMetadataChanged', event);
    });
  }

  /**
   * Reads `node`'s stored metadata (bounded by connectTimeout), keeps it as the leader's, then
   * calls `then` with it and the leader's metadata before this read (what the application was
   * last told); reads and notifications run one after another, in order. Malformed metadata is
   * dropped and counted: the last good read of the term stands (`{}` before one).
   */
  #afterMetadataRead(node: string, then: (metadata: Metadata, previous: Metadata | undefined) => void): void {
    this.#metadataReads = this.#metadataReads.then(async () => {
      let stored: Metadata | 'invalid' | undefined;
      const client = this.#ctlClient;
      if (client !== undefined && !this.#closing) {
        try {
          const row = (await withDeadline(client.query<{ metadata: string | null }>(this.#sql.nodeMetadata, [this.options.project, node]), this.options.connectTimeout)).rows[0];
          stored = row === undefined ? NO_METADATA : parseStoredMetadata(row.metadata);
          // Each malformed write is counted once: the same row read again (a reconnect's read,
          // a notice that follows a queued read) is not news.
          const seen = stored === 'invalid' ? `${node}\u0000${row?.metadata ?? ''}` : undefined;
          if (seen !== undefined && seen !== this.#lastDropped) this.#metadataDropped++;
          this.#lastDropped = seen;
        } catch (error) {
          this.#logger.debug(`reading ${node}'s metadata: ${message(error)}`);
        }
      }
      const previous = this.#leaderMetadata;
      const metadata = stored === undefined || stored === 'invalid' ? (previous ?? NO_METADATA) : stored;
      if (this.#leader?.instanceId === node) this.#leaderMetadata = metadata;
      then(metadata, previous);
    });
  }

  #released(instanceId: string, epoch: number, reason: string): void {
    this.#lastReleaseNotice = { instanceId, epoch };
    if (instanceId === this.instanceId) return;
    if (this.#leader === undefined || this.#leader.instanceId !== instanceId || this.#leader.epoch !== epoch) return;
    this.#suspected = true;
    const willPromote = this.#enabled && this.#role === 'secondary' && this.#phase === 'waiting';
    const event = {
      instanceId,
      epoch,
      cause: 'released',
      willPromote,
      reason: willPromote ? 'taking-over' : this.#enabled ? 'queued' : 'disabled',
      at: Date.now(),
    };
    this.#logger.debug(`${instanceId} released epoch ${epoch} (${reason})`);
    // After any primaryChanged still waiting for its metadata read.
    this.#metadataReads = this.#metadataReads.then(() => new Promise<void>((resolve) => setImmediate(() => {
      this.emitSafely('primaryLost', event);
      resolve();
    })));
  }

  // ---------------------------------------------------------------------------------------------

  async #shutdown(): Promise<void> {
    this.#closing = true;
    this.#firstSettled.reject(new FailoverError('ERR_FAILOVER_LIFECYCLE', 'shut down before the first role settled'));
    this.#ctlReady.reject(new FailoverError('ERR_FAILOVER_LIFECYCLE', 'shut down before the control connection was up'));
    const term = this.#term;
    if (term !== undefined) {
      this.#endTerm(term, 'shutdown', true);
      await term.ended.promise;
    }
    this.#dropLockClient();
    this.#kick();
    await this.#campaign;
    // The control connection, set up or still being set up (a schema check, LISTEN): ended here,
    // so the loop never waits on a connection nobody will close.
    const ctl = this.#ctlConnection;
    if (ctl !== undefined) {
      if (ctl === this.#ctlClient) {
        await withDeadline(ctl.query(this.#sql.forget, [this.options.project, this.instanceId]), this.options.connectTimeout).catch(
          () => undefined,
        );
      }
      await ctl.end().catch(() => undefined);
    }
    if (this.#ctlSleep !== undefined) {
      clearTimeout(this.#ctlSleep.timer);
      this.#ctlSleep.resolve();
    }
    await this.#control;
    // Reads still queued fail fast on the ended connection; their notifications go out before `stopped`.
    await this.#metadataReads.catch(() => undefined);
    if (this.#sleepTimer !== undefined) clearTimeout(this.#sleepTimer);
    this.#phase = 'stopped';
    this.#change(this.#role, 'stopped', this.#epoch, 'shutdown');
    this.endChangeStreams();
    // roleChanged listeners run on the next turn: let the last one (to stopped) run before resolving.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  protected override onListenerError(event: string, error: unknown): void {
    this.#logger.warn(`a ${event} listener threw: ${message(error)}`);
  }
}
