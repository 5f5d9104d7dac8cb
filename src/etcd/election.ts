/**
 * The etcd election (`EtcdElection`), exported by the `failover-watch/etcd` entry point
 * (`src/etcd.ts`).
 *
 * The driver around the pure machine in `core/etcd-machine.ts`: it runs the effects the machine
 * asks for against etcd (through the `etcd3` client), feeds their outcomes back, and delivers
 * notifications after each step without letting a listener block or throw into the machine.
 * Every decision is the machine's.
 *
 * @module
 */
import { Etcd3, type Lease, type Watcher } from 'etcd3';
import { ConstantBackoff, handleAll, noop, retry } from 'cockatiel';
import { hostname } from 'node:os';
import type {
  BackendKind,
  Election,
  ElectionCallbacks,
  ElectionEvents,
  ElectionNode,
  ElectionPrimaryChangedEvent,
  ElectionPrimaryMetadataChangedEvent,
  ElectionRole,
  ElectionRoleChange,
  ElectionStatusCore,
  Health,
} from '../election/contract.js';
import { etcdStep, initialEtcdState, type CampaignKey, type EtcdEffect, type EtcdInput, type EtcdMachineState } from '../core/etcd-machine.js';
import { FailoverError, InvalidOptionError } from '../errors.js';
import { Notifier } from '../runtime/notifier.js';
import { callSettled, TermSignals } from '../election/driver.js';
import { StepLoop } from '../runtime/step-loop.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import { withDeadline } from '../runtime/deadline.js';
import { resolveMetadata } from '../metadata-option.js';
import { checkMetadata, NO_METADATA, sameMetadata, type Metadata } from '../protocol/metadata.js';

/** Options of {@link EtcdElection}. Only `project` is required. */
export interface EtcdElectionOptions extends ElectionCallbacks {
  /** The group's name: keys live under `<prefix>/<project>/election/`. 1-128 of `A-Z a-z 0-9 _ . -`. */
  readonly project: string;
  /** etcd endpoints. @default ['http://127.0.0.1:2379'] */
  readonly hosts?: readonly string[];
  /** Key prefix. @default '/failover-watch' */
  readonly prefix?: string;
  /** This node's id. @default os.hostname() */
  readonly instanceId?: string;
  /** Lower is preferred. @default 1 */
  readonly priority?: number;
  /**
   * Lease TTL, ms, a multiple of 1000, at least 2000: a crashed leader is replaced within it
   * plus one keepalive interval. @default 6000
   */
  readonly leaseTTL?: number;
  /** How often the lease is kept alive, ms; below leaseTTL / 2. @default 500 */
  readonly keepAliveInterval?: number;
  /**
   * A primary steps down this long after its last confirmed keepalive was sent, before its lease
   * can expire. It must exceed keepAliveInterval plus the time etcd takes to elect a new raft
   * leader (about 2.5 x etcd's `--election-timeout`), or the loss of etcd's raft leader costs
   * the term (docs/ETCD.md). @default the smaller of 0.7 x leaseTTL and leaseTTL - keepAliveInterval
   */
  readonly maxDrift?: number;
  /** @default true */
  readonly enabled?: boolean;
  /** @default 10000 */
  readonly startTimeout?: number;
  /** @default 1000 */
  readonly demoteTimeout?: number;
  /**
   * How many leadership events the project keeps under `<prefix>/<project>/events/` (read with
   * `events()`); 0 records none. @default 100
   */
  readonly eventHistory?: number;
  /**
   * Application metadata this node announces, stored in its campaign key's value: followers get
   * the leader's with `primaryChanged` and `primaryMetadataChanged`; `setMetadata()` replaces it.
   * Limits as the Watcher's option (docs/ETCD.md).
   * @example metadata: { port: '7001' }
   */
  readonly metadata?: Readonly<Record<string, string>>;
  /** etcd user and password (RBAC). */
  readonly auth?: { readonly username: string; readonly password: string };
  /** @internal */
  readonly clock?: Clock;
}

/** A recorded leadership event (newest first in `events()`). */
export interface EtcdLeadershipEvent {
  readonly instanceId: string;
  readonly action: 'elected' | 'released';
  /** The term's epoch (its key's create revision). */
  readonly epoch: number;
  /** `elected`: `startup`, `handover`, `reacquired`; `released`: `stepdown`, `shutdown`, `preempted`, `drift`, `lost`, ... */
  readonly reason: string | undefined;
  /** The deciding node's wall clock, ms since the Unix epoch (etcd keeps no server time). */
  readonly at: number;
}

/** `status()`: the contract's core and an `etcd` section. */
export interface EtcdElectionStatus extends ElectionStatusCore {
  readonly etcd: {
    readonly hosts: readonly string[];
    readonly key: string | undefined;
    readonly leaseId: string | undefined;
    readonly state: 'unknown' | 'ok' | 'failing';
    readonly lastError: string | undefined;
    readonly lastKeepAliveAgeMs: number | undefined;
    readonly leaseTTL: number;
    readonly maxDrift: number;
    readonly counters: EtcdMachineState['counters'];
    /** This node's own metadata. */
    readonly metadata: Readonly<Record<string, string>>;
    /** The followed leader's metadata as last read; undefined while leading or following nobody. */
    readonly leaderMetadata: Readonly<Record<string, string>> | undefined;
    /** Campaign keys read with metadata that broke the rules (dropped, counted once per write). */
    readonly metadataDropped: number;
  };
}

/** The contract's events and `primaryMetadataChanged`. */
export interface EtcdElectionEvents extends ElectionEvents {
  /** The leader this node follows re-put its key with other metadata. */
  primaryMetadataChanged: (event: ElectionPrimaryMetadataChangedEvent) => void;
}

interface Member {
  readonly nodeId: string;
  readonly priority: number;
  readonly metadata?: unknown;
}

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

function check(ok: boolean, option: string, expected: string, received: unknown): void {
  if (!ok) throw new InvalidOptionError(option, expected, received);
}

/**
 * etcd3's watch manager calls `next()` on this to get the first delay, then `next()` on each
 * delay for the following one: 50 ms, then `steadyMs` for good.
 */
function watchBackoff(steadyMs: number): { readonly duration: number; next(): ReturnType<typeof watchBackoff> } {
  const steady = { duration: steadyMs, next: () => steady };
  const first = { duration: 50, next: () => steady };
  return { duration: 50, next: () => first };
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The key prefix under which the nodes of `project` campaign (one key per node); checks `project`. */
export function campaignPrefix(prefix: string, project: string): string {
  check(typeof project === 'string' && NAME.test(project), 'project', '1-128 characters of A-Z a-z 0-9 _ . -', project);
  return `${prefix}/${project}/election/`;
}

/**
 * The campaign keys read under {@link campaignPrefix}, sorted by create revision, as the line:
 * the first leads (its create revision is the epoch). Values that are not a campaign are skipped.
 * A key whose `metadata` breaks the rules of `protocol/metadata.ts` stays in the line with
 * `metadataInvalid` set and no metadata: only its metadata is dropped.
 */
export function campaignLine(
  kvs: ReadonlyArray<{ key: Buffer; value: Buffer; create_revision: string; mod_revision?: string; lease: string }>,
): CampaignKey[] {
  const line: CampaignKey[] = [];
  for (const kv of kvs) {
    let member: Member;
    try {
      const parsed = JSON.parse(kv.value.toString('utf8')) as Partial<Member>;
      if (typeof parsed.nodeId !== 'string' || typeof parsed.priority !== 'number') continue;
      member = { nodeId: parsed.nodeId, priority: parsed.priority, metadata: parsed.metadata };
    } catch {
      continue; // garbage under the prefix: not a candidate
    }
    const checked = member.metadata === undefined ? undefined : checkMetadata(member.metadata);
    line.push({
      key: kv.key.toString('utf8'),
      createRevision: Number(kv.create_revision),
      nodeId: member.nodeId,
      priority: member.priority,
      leaseId: String(kv.lease),
      metadata: checked === undefined ? NO_METADATA : checked.ok ? checked.metadata : undefined,
      ...(checked !== undefined && !checked.ok ? { metadataInvalid: true } : {}),
      ...(kv.mod_revision === undefined ? {} : { modRevision: Number(kv.mod_revision) }),
    });
  }
  return line;
}

/**
 * Where, beside the campaign keys under {@link campaignPrefix}, a leader that gives up its key on
 * purpose (stepDown, a better priority, shutdown) leaves a release mark, `RELEASE_MARK` + the
 * epoch in 16 digits = `{"released": epoch, "instanceId"}`, in the same transaction that deletes
 * its key; a leader key that goes without the mark of its epoch expired (a crash, a lost lease).
 * One key per epoch, so that a quick second release cannot hide the first from a slow reader;
 * each release deletes the marks more than {@link RELEASE_MARKS_KEPT} revisions older. Not
 * campaigns: {@link campaignLine} skips them.
 */
const RELEASE_MARK = '~released/';
const RELEASE_MARKS_KEPT = 1_000_000;
const markKey = (dir: string, epoch: number): string => `${dir}${RELEASE_MARK}${String(epoch).padStart(16, '0')}`;

/** The epochs of the release marks among `kvs` (read under the campaign prefix `dir`). */
function releaseMarks(kvs: ReadonlyArray<{ key: Buffer; value: Buffer }>, dir: string): number[] {
  const out: number[] = [];
  for (const kv of kvs) {
    if (!kv.key.toString('utf8').startsWith(`${dir}${RELEASE_MARK}`)) continue;
    try {
      const epoch = (JSON.parse(kv.value.toString('utf8')) as { released?: unknown }).released;
      if (typeof epoch === 'number' && Number.isSafeInteger(epoch) && epoch > 0) out.push(epoch);
    } catch {
      // not a mark
    }
  }
  return out;
}

/** An election on etcd; implements the contract. */
export class EtcdElection extends Notifier<EtcdElectionEvents, ElectionRoleChange> implements Election<EtcdElectionStatus, EtcdElectionEvents> {
  readonly backend: BackendKind = 'etcd';
  readonly instanceId: string;
  readonly #o: Required<Omit<EtcdElectionOptions, 'auth' | 'onPromote' | 'onDemote' | 'clock' | 'metadata'>> & EtcdElectionOptions;
  readonly #clock: Clock;
  readonly #dir: string;
  readonly #eventsDir: string;
  readonly #client: Etcd3;
  readonly #loop: StepLoop<EtcdMachineState, EtcdInput, EtcdEffect>;
  readonly #leases = new Map<string, Lease>();
  #releaseOnClose: { readonly key: string; readonly epoch: number } | undefined;
  readonly #signals = new TermSignals();
  #watcher: Watcher | undefined;
  #started: Promise<void> | undefined;
  #resolveStarted: () => void = () => {};
  #rejectStarted: (e: unknown) => void = () => {};
  #closed: Promise<void> | undefined;
  #resolveClosed: () => void = () => {};
  #finished = false;
  #pending: Array<() => void> = [];
  #flushScheduled = false;
  readonly #closing = new AbortController();
  /** This node's metadata (the option, then `setMetadata()`). */
  #metadata: Metadata = NO_METADATA;
  /** The leader followed, with its metadata as last read. */
  #followed: { readonly instanceId: string; readonly epoch: number; readonly metadata: Metadata } | undefined;
  /** Malformed metadata counted: key -> mod revision, so one bad write counts once. */
  readonly #invalidSeen = new Map<string, number | undefined>();
  #metadataDropped = 0;
  /** The latest line read (with metadata). */
  #lastLine: readonly CampaignKey[] = [];
  /** Metadata re-puts, one after another. */
  #metadataWrites: Promise<void> = Promise.resolve();
  /** The last re-put failed: tried again after the next confirmed keepalive. */
  #metadataStale = false;

  constructor(options: EtcdElectionOptions) {
    super();
    const leaseTTL = options.leaseTTL ?? 6000;
    check(typeof options.project === 'string' && NAME.test(options.project), 'project', '1-128 characters of A-Z a-z 0-9 _ . -', options.project);
    check(Number.isInteger(leaseTTL) && leaseTTL >= 2000 && leaseTTL % 1000 === 0, 'leaseTTL', 'a multiple of 1000 ms, at least 2000', leaseTTL);
    const keepAliveInterval = options.keepAliveInterval ?? 500;
    check(Number.isFinite(keepAliveInterval) && keepAliveInterval >= 50 && keepAliveInterval < leaseTTL / 2, 'keepAliveInterval', `50 <= ms < leaseTTL / 2 (${leaseTTL / 2})`, keepAliveInterval);
    const maxDrift = options.maxDrift ?? Math.min(Math.round(leaseTTL * 0.7), leaseTTL - keepAliveInterval);
    check(Number.isFinite(maxDrift) && maxDrift > keepAliveInterval && maxDrift <= leaseTTL - keepAliveInterval, 'maxDrift', `keepAliveInterval < ms <= leaseTTL - keepAliveInterval (${leaseTTL - keepAliveInterval})`, maxDrift);
    const priority = options.priority ?? 1;
    check(Number.isFinite(priority), 'priority', 'a finite number', priority);
    const instanceId = options.instanceId ?? hostname();
    check(/^[\x21-\x7e]{1,256}$/.test(instanceId), 'instanceId', '1-256 printable characters, no spaces', instanceId);
    const hosts = options.hosts ?? ['http://127.0.0.1:2379'];
    check(Array.isArray(hosts) && hosts.length > 0 && hosts.every((h) => /^https?:\/\//.test(h)), 'hosts', 'a non-empty list of http(s):// URLs', hosts);
    const prefix = options.prefix ?? '/failover-watch';
    const eventHistory = options.eventHistory ?? 100;
    this.#metadata = resolveMetadata(options.metadata);
    check(Number.isInteger(eventHistory) && eventHistory >= 0 && eventHistory <= 100_000, 'eventHistory', 'an integer from 0 to 100000', eventHistory);
    this.#o = {
      ...options,
      hosts,
      prefix,
      instanceId,
      priority,
      leaseTTL,
      keepAliveInterval,
      maxDrift,
      eventHistory,
      enabled: options.enabled ?? true,
      startTimeout: options.startTimeout ?? 10_000,
      demoteTimeout: options.demoteTimeout ?? 1000,
    };
    this.instanceId = instanceId;
    this.#clock = options.clock ?? systemClock;
    this.#dir = campaignPrefix(prefix, options.project);
    this.#eventsDir = `${prefix}/${options.project}/events/`;
    this.#client = new Etcd3({
      hosts: [...hosts],
      ...(options.auth === undefined ? {} : { auth: { ...options.auth } }),
      // No circuit breaker (it would delay a takeover); a failed call is retried at once on each
      // other member, within the call's bound (maxDrift), so one lost member costs nothing.
      faultHandling: {
        host: () => noop,
        global: hosts.length > 1 ? retry(handleAll, { maxAttempts: hosts.length - 1, backoff: new ConstantBackoff(0) }) : noop,
        // A watch stream that broke is opened again (on a random member) within a keepalive
        // interval, however long the outage was: etcd3's default backoff grows to 30 s.
        watchBackoff: watchBackoff(keepAliveInterval),
      },
      dialTimeout: maxDrift,
      // Every call but the watch stream carries a gRPC deadline of maxDrift: without quorum etcd
      // calls hang, and a call abandoned at the driver's own bound must not stay open.
      defaultCallOptions: (context) => (context.isStream && context.method !== 'leaseKeepAlive' ? {} : { deadline: Date.now() + maxDrift }),
    });
    this.#loop = new StepLoop<EtcdMachineState, EtcdInput, EtcdEffect>({
      initial: initialEtcdState({
        nodeId: instanceId,
        priority,
        leaseTTL,
        keepAliveInterval,
        maxDrift,
        retryInterval: keepAliveInterval,
        demoteTimeout: this.#o.demoteTimeout,
        rankInterval: leaseTTL,
        enabled: this.#o.enabled,
      }),
      step: etcdStep,
      clock: this.#clock,
      random: Math.random,
      run: (effect) => this.#run(effect),
      tick: { type: 'tick' },
    });
  }

  /** The contract's view of the event names (`primaryMetadataChanged` is this backend's own). */
  override eventNames(): Array<keyof ElectionEvents> {
    return super.eventNames() as Array<keyof ElectionEvents>;
  }

  get role(): ElectionRole {
    return this.#loop.state.role;
  }

  get epoch(): number {
    return this.#loop.state.epoch;
  }

  get enabled(): boolean {
    return this.#loop.state.enabled;
  }

  start(): Promise<void> {
    if (this.#started !== undefined) return this.#started;
    this.#started = new Promise<void>((resolve, reject) => {
      this.#resolveStarted = resolve;
      this.#rejectStarted = reject;
    });
    this.#started.catch(() => undefined);
    const timer = this.#clock.setTimer(() => {
      if (this.#loop.state.settled) return;
      this.#rejectStarted(new FailoverError('ERR_FAILOVER_TIMEOUT', `no role settled within startTimeout (${this.#o.startTimeout} ms): ${this.#loop.state.lastError ?? 'no answer from etcd'}`));
      void this.shutdown();
    }, this.#o.startTimeout);
    void this.#started.finally(() => this.#clock.clearTimer(timer)).catch(() => undefined);
    void this.#watch();
    this.#loop.dispatch({ type: 'start' });
    return this.#started;
  }

  shutdown(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));
    if (this.#started === undefined) this.#finish();
    else this.#loop.dispatch({ type: 'shutdown' });
    return this.#closed;
  }

  stepDown(): void {
    this.#loop.dispatch({ type: 'stepDown' });
  }

  setEnabled(enabled: boolean): void {
    this.#loop.dispatch({ type: 'setEnabled', enabled });
  }

  roleChanges(): AsyncIterableIterator<ElectionRoleChange> {
    return this.openChangeStream(64);
  }

  status(): EtcdElectionStatus {
    const s = this.#loop.state;
    return {
      backend: 'etcd',
      instanceId: this.instanceId,
      role: s.role,
      phase: s.phase,
      epoch: s.epoch,
      enabled: s.enabled,
      primary: s.leader === undefined ? undefined : { instanceId: s.leader.instanceId, epoch: s.leader.epoch },
      primarySuspected: s.primarySuspected,
      promotions: s.counters.promotions,
      demotions: s.counters.demotions,
      failedPromotions: s.counters.failedPromotions,
      notificationsDropped: this.notificationsDropped,
      listenerErrors: this.listenerErrors,
      etcd: {
        hosts: this.#o.hosts,
        key: s.ownKey?.key,
        leaseId: s.session?.leaseId,
        state: s.etcdOk === undefined ? 'unknown' : s.etcdOk ? 'ok' : 'failing',
        lastError: s.lastError,
        lastKeepAliveAgeMs: s.session === undefined ? undefined : Math.max(0, this.#clock.now() - s.session.okSentAt),
        leaseTTL: this.#o.leaseTTL,
        maxDrift: this.#o.maxDrift,
        counters: s.counters,
        metadata: this.#metadata,
        leaderMetadata: s.role === 'secondary' ? this.#followed?.metadata : undefined,
        metadataDropped: this.#metadataDropped,
      },
    };
  }

  /**
   * Replaces this node's metadata (validated like the option: throws `InvalidOptionError` naming
   * the key). Re-puts the node's campaign key under the same lease, only if it is still the key
   * of the same create revision: the epoch and the node's place in line do not change.
   */
  setMetadata(metadata: Readonly<Record<string, string>>): void {
    this.#metadata = resolveMetadata(metadata);
    this.#writeMetadata();
  }

  /** This node's own metadata. */
  get metadata(): Readonly<Record<string, string>> {
    return this.#metadata;
  }

  health(): Health {
    const st = this.status();
    const ok = (reason: string): Health => ({ ok: true, status: 200, reason });
    const bad = (reason: string): Health => ({ ok: false, status: 503, reason });
    if (st.etcd.state !== 'ok') return bad(`etcd ${st.etcd.state}`);
    if (st.role === 'primary') return ok('primary, lease kept alive');
    if (st.role === 'secondary') return ok(st.primary ? `following ${st.primary.instanceId}` : 'secondary');
    return bad(st.role);
  }

  /**
   * The campaign keys, in line order: the first is the primary, every other one a candidate. A
   * node without a key (disabled, holding off after a failed onPromote, between two campaigns)
   * is listed only by itself, last, as not eligible.
   */
  async liveNodes(): Promise<ElectionNode[]> {
    const line = await this.#range();
    const now = this.#clock.wallNow();
    const ownKey = this.#loop.state.ownKey?.key;
    const nodes: ElectionNode[] = line.map((k, i) => ({
      instanceId: k.nodeId,
      role: i === 0 ? 'primary' : 'secondary',
      priority: k.priority,
      epoch: i === 0 ? k.createRevision : undefined,
      lastSeenAt: now,
      self: k.key === ownKey,
      eligible: true,
      metadata: k.metadata ?? NO_METADATA,
    }));
    if (!nodes.some((n) => n.self)) {
      nodes.push({ instanceId: this.instanceId, role: 'secondary', priority: this.#o.priority, epoch: undefined, lastSeenAt: now, self: true, eligible: false, metadata: this.#metadata });
    }
    return nodes;
  }

  /** The newest `limit` leadership events of the project, newest first. */
  async events(limit = 20): Promise<EtcdLeadershipEvent[]> {
    if (this.#finished) throw new FailoverError('ERR_FAILOVER_LIFECYCLE', 'the election was shut down');
    let res;
    try {
      res = await this.#bounded(this.#client.getAll().prefix(this.#eventsDir).sort('Key', 'Descend').limit(limit).exec());
    } catch (error) {
      throw new FailoverError('ERR_FAILOVER_TRANSPORT', `etcd: ${message(error)}`, { cause: error });
    }
    const events: EtcdLeadershipEvent[] = [];
    for (const kv of res.kvs) {
      try {
        const e = JSON.parse(kv.value.toString('utf8')) as Partial<EtcdLeadershipEvent>;
        if (typeof e.instanceId !== 'string' || (e.action !== 'elected' && e.action !== 'released') || typeof e.epoch !== 'number' || typeof e.at !== 'number') continue;
        events.push({ instanceId: e.instanceId, action: e.action, epoch: e.epoch, reason: typeof e.reason === 'string' ? e.reason : undefined, at: e.at });
      } catch {
        // garbage under the prefix: not an event
      }
    }
    return events;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  // -------------------------------------------------------------------------------------------

  /** Bounds a call by maxDrift: without quorum etcd calls hang. */
  #bounded<T>(promise: Promise<T>): Promise<T> {
    return withDeadline(promise, this.#o.maxDrift, { unref: true });
  }

  /**
   * One keepalive, sent again at once to another member while a member fails: etcd3 opens the
   * keepalive stream on a random member and reports a dead one only as the stream's error, past
   * its own retry, so without this one member of three lost fails a third of the keepalives and
   * a leader could drift past `maxDrift` on a healthy cluster. Bounded by the caller.
   */
  async #keepAliveAnyMember(lease: Lease): ReturnType<Lease['keepaliveOnce']> {
    const attempts = 3 * this.#o.hosts.length;
    let last: unknown;
    for (let i = 0; i < attempts && !this.#finished; i++) {
      try {
        return await lease.keepaliveOnce();
      } catch (error) {
        if (/lease not found/i.test(message(error))) throw error;
        last = error;
      }
    }
    throw last instanceof Error ? last : new Error(String(last ?? 'shut down'));
  }

  /**
   * Revokes a lease the machine gave up, trying again every keepAliveInterval while etcd does not
   * answer (no quorum): etcd renews every lease by its TTL when quorum returns, so without this
   * the abandoned key would stay first in line one more TTL after an outage. Bounded by 10 x
   * leaseTTL (at least a minute) and by shutdown; a lease never revoked ends with its TTL.
   */
  async #revokeAbandoned(lease: Lease): Promise<void> {
    const until = this.#clock.now() + Math.max(60_000, 10 * this.#o.leaseTTL);
    for (let i = 0; i < 10_000 && !this.#finished && this.#clock.now() < until; i++) {
      try {
        await this.#bounded(lease.revoke());
        return;
      } catch {
        await this.#pause(this.#o.keepAliveInterval);
      }
    }
  }

  /** Resolves after `ms`, or at once when the election finishes. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#finished) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        this.#closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.#closing.signal.addEventListener('abort', done);
    });
  }

  async #range(): Promise<CampaignKey[]> {
    return (await this.#rangeWithMark()).line;
  }

  /** The line, and the release mark read in the same request. */
  async #rangeWithMark(): Promise<{ line: CampaignKey[]; released: number[] }> {
    const res = await this.#bounded(this.#client.getAll().prefix(this.#dir).sort('Create', 'Ascend').exec());
    const line = campaignLine(res.kvs);
    this.#countInvalid(line);
    return { line, released: releaseMarks(res.kvs, this.#dir) };
  }

  /**
   * Deletes a leading key and leaves its release mark, in one transaction, only while the key is
   * still the one of that epoch (a key already gone, or another's, is left alone).
   */
  #releaseLeading(key: string, epoch: number): Promise<unknown> {
    return this.#bounded(
      this.#client
        .if(key, 'Create', '==', epoch)
        .then(
          this.#client.delete().key(key),
          this.#client.put(markKey(this.#dir, epoch)).value(JSON.stringify({ released: epoch, instanceId: this.instanceId })),
          this.#client.delete().inRange({ start: markKey(this.#dir, 0), end: markKey(this.#dir, Math.max(0, epoch - RELEASE_MARKS_KEPT)) }),
        )
        .commit(),
    );
  }

  /** Counts each write of malformed metadata once (a key read again unchanged is not news). */
  #countInvalid(line: readonly CampaignKey[]): void {
    const present = new Set<string>();
    for (const k of line) {
      present.add(k.key);
      if (k.metadataInvalid !== true) {
        this.#invalidSeen.delete(k.key);
        continue;
      }
      if (this.#invalidSeen.has(k.key) && this.#invalidSeen.get(k.key) === k.modRevision) continue;
      this.#invalidSeen.set(k.key, k.modRevision);
      this.#metadataDropped++;
    }
    for (const key of [...this.#invalidSeen.keys()]) if (!present.has(key)) this.#invalidSeen.delete(key);
  }

  /**
   * Takes a freshly read line: the followed leader's metadata, as re-put in the same term. A key
   * whose metadata was dropped keeps the last good read (as over ZeroMQ and Redis).
   */
  #takeLine(line: readonly CampaignKey[]): void {
    this.#lastLine = line;
    const followed = this.#followed;
    if (followed === undefined) return;
    const first = line[0];
    if (first === undefined || first.nodeId !== followed.instanceId || first.createRevision !== followed.epoch) return;
    if (first.metadata === undefined || sameMetadata(first.metadata, followed.metadata)) return;
    const metadata = first.metadata;
    this.#followed = { ...followed, metadata };
    const event: ElectionPrimaryMetadataChangedEvent = { instanceId: followed.instanceId, epoch: followed.epoch, metadata, at: this.#clock.wallNow() };
    this.#later(() => this.emitSafely('primaryMetadataChanged', event));
  }

  /** The campaign key's value: who campaigns, with what priority and metadata. */
  #campaignValue(metadata: Metadata): string {
    return JSON.stringify({ nodeId: this.instanceId, priority: this.#o.priority, pid: process.pid, host: hostname(), metadata });
  }

  /**
   * Re-puts the own campaign key with the current metadata, after any write before it: a put on
   * the existing key (same lease) guarded by its create revision, so a key that is gone (resigned,
   * expired) is never created again here. A failed put is tried again after the next confirmed
   * keepalive; without a key the next campaign writes the metadata.
   */
  #writeMetadata(): void {
    this.#metadataStale = false;
    this.#metadataWrites = this.#metadataWrites.then(async () => {
      const own = this.#loop.state.ownKey;
      const leaseId = this.#loop.state.session?.leaseId;
      if (own === undefined || leaseId === undefined || this.#finished) return;
      const value = this.#campaignValue(this.#metadata);
      await this.#bounded(
        this.#client.if(own.key, 'Create', '==', own.createRevision).then(this.#client.put(own.key).value(value).lease(leaseId)).commit(),
      ).catch(() => {
        this.#metadataStale = true;
      });
    });
  }

  async #watch(): Promise<void> {
    try {
      const watcher = await this.#client.watch().prefix(this.#dir).create();
      if (this.#finished) {
        await watcher.cancel().catch(() => undefined);
        return;
      }
      this.#watcher = watcher;
      const changed = (): void => this.#loop.dispatch({ type: 'changed' });
      watcher.on('put', changed);
      watcher.on('delete', changed);
      watcher.on('connected', changed);
      watcher.on('error', () => undefined);
    } catch {
      // The periodic re-read stands in until the next attempt.
      if (!this.#finished) setTimeout(() => void this.#watch(), this.#o.keepAliveInterval).unref();
    }
  }

  #op(id: number, kind: Extract<EtcdInput, { type: 'opFailed' }>['kind'], work: () => Promise<EtcdInput>, after?: () => void): void {
    work().then(
      (input) => {
        this.#loop.dispatch(input);
        after?.();
      },
      (error: unknown) => {
        const detail = message(error);
        const leaseGone = /lease not found|requested lease not found/i.test(detail);
        this.#loop.dispatch({ type: 'opFailed', id, kind, detail, leaseGone });
      },
    );
  }

  #run(effect: EtcdEffect): void {
    switch (effect.type) {
      case 'grant': {
        const sentAt = this.#clock.now();
        const lease = this.#client.lease(this.#o.leaseTTL / 1000, { autoKeepAlive: false });
        lease.on('lost', () => undefined);
        this.#op(effect.id, 'grant', async () => {
          const leaseId = await this.#bounded(lease.grant());
          this.#leases.set(leaseId, lease);
          return { type: 'granted', id: effect.id, leaseId, sentAt };
        });
        return;
      }
      case 'keepAlive': {
        const lease = this.#leases.get(effect.leaseId);
        const sentAt = this.#clock.now();
        this.#op(effect.id, 'keepAlive', async () => {
          if (lease === undefined) throw new Error('lease not found');
          const res = await this.#bounded(this.#keepAliveAnyMember(lease));
          return { type: 'keptAlive', id: effect.id, sentAt, alive: Number(res.TTL) > 0 };
        }, () => {
          // etcd answers again: a metadata re-put that failed meanwhile is tried again.
          if (this.#metadataStale) this.#writeMetadata();
        });
        return;
      }
      case 'campaign': {
        const lease = this.#leases.get(effect.leaseId);
        const key = `${this.#dir}${BigInt(effect.leaseId).toString(16)}`;
        const written = this.#metadata;
        const value = this.#campaignValue(written);
        let stale = false;
        this.#op(effect.id, 'campaign', async () => {
          if (lease === undefined) throw new Error('lease not found');
          const res = await this.#bounded(
            this.#client.if(key, 'Create', '==', 0).then(lease.put(key).value(value)).else(this.#client.get(key)).commit(),
          );
          let createRevision = Number(res.header.revision);
          if (!res.succeeded) {
            const kv = res.responses[0]?.response_range?.kvs[0];
            if (kv === undefined) throw new Error('campaign key vanished');
            createRevision = Number(kv.create_revision);
            stale = kv.value.toString('utf8') !== value;
          }
          return { type: 'campaigned', id: effect.id, key, createRevision };
        }, () => {
          // setMetadata() while the campaign was in flight had no key to re-put.
          if (stale || written !== this.#metadata) this.#writeMetadata();
        });
        return;
      }
      case 'rank':
        this.#op(effect.id, 'rank', async () => {
          const { line, released } = await this.#rangeWithMark();
          this.#takeLine(line);
          return { type: 'ranked', id: effect.id, line, released };
        });
        return;
      case 'resign':
        this.#op(effect.id, 'resign', async () => {
          if (effect.mark) await this.#releaseLeading(effect.key, effect.epoch);
          else await this.#bounded(this.#client.delete().key(effect.key).exec());
          return { type: 'resigned', id: effect.id };
        });
        return;
      case 'revoke': {
        if (effect.awaited) {
          // #closeAll revokes it and waits, after deleting a leading key with its release mark.
          this.#releaseOnClose = effect.release;
          return;
        }
        const lease = this.#leases.get(effect.leaseId);
        this.#leases.delete(effect.leaseId);
        if (lease !== undefined) void this.#revokeAbandoned(lease);
        return;
      }
      case 'callPromote': {
        const { term, epoch, reason } = effect;
        const signal = this.#signals.open(term);
        this.#loop.whenIdle(() =>
          callSettled(this.#o.onPromote, { epoch, reason, signal }, 'onPromote', (error) =>
            this.#loop.dispatch(
              error === undefined ? { type: 'promoteSettled', term, ok: true } : { type: 'promoteSettled', term, ok: false, detail: message(error) },
            ),
          ),
        );
        return;
      }
      case 'abortPromote':
        this.#signals.abort(effect.term, new FailoverError('ERR_FAILOVER_LIFECYCLE', `role lost (${effect.reason})`));
        return;
      case 'callDemote': {
        const { term, epoch, reason } = effect;
        this.#loop.whenIdle(() =>
          callSettled(this.#o.onDemote, { epoch, reason }, 'onDemote', () => this.#loop.dispatch({ type: 'demoteSettled', term })),
        );
        return;
      }
      case 'roleChanged': {
        const change: ElectionRoleChange = { from: effect.from, to: effect.to, epoch: effect.epoch, reason: effect.reason, at: this.#loop.decidedAt, instanceId: this.instanceId };
        // A leader (or a stopped node) follows nobody.
        if (effect.to !== 'secondary') this.#followed = undefined;
        this.pushChange(change);
        this.#later(() => this.emitSafely('roleChanged', change));
        if (effect.to === 'primary') this.#record({ instanceId: this.instanceId, action: 'elected', epoch: effect.epoch, reason: effect.reason, at: change.at });
        else if (effect.from === 'primary') this.#record({ instanceId: this.instanceId, action: 'released', epoch: effect.epoch, reason: effect.reason, at: change.at });
        return;
      }
      case 'primaryChanged': {
        // The line this decision was taken on: its first key carries the leader's metadata.
        const first = this.#lastLine[0];
        const known = first !== undefined && first.nodeId === effect.instanceId && first.createRevision === effect.epoch ? first.metadata : undefined;
        const metadata = known ?? NO_METADATA;
        this.#followed = { instanceId: effect.instanceId, epoch: effect.epoch, metadata };
        const event: ElectionPrimaryChangedEvent = { instanceId: effect.instanceId, epoch: effect.epoch, priority: effect.priority, at: this.#loop.decidedAt, metadata };
        this.#later(() => this.emitSafely('primaryChanged', event));
        return;
      }
      case 'primaryLost': {
        const { type: _t, ...rest } = effect;
        const event = { ...rest, at: this.#loop.decidedAt };
        this.#later(() => this.emitSafely('primaryLost', event));
        return;
      }
      case 'promotionFailed': {
        const { type: _t, ...rest } = effect;
        const event = { ...rest, at: this.#loop.decidedAt };
        this.#later(() => this.emitSafely('promotionFailed', event));
        return;
      }
      case 'started':
        this.#resolveStarted();
        return;
      case 'close':
        void this.#closeAll();
        return;
      case 'log':
        return;
    }
  }

  /**
   * Records a leadership event, best effort (a node that lost etcd cannot record its own loss),
   * and trims the history to `eventHistory`. Keys sort by epoch, then elected before released.
   */
  #record(event: EtcdLeadershipEvent): void {
    const keep = this.#o.eventHistory;
    if (keep === 0) return;
    const key = `${this.#eventsDir}${String(event.epoch).padStart(16, '0')}-${event.action === 'elected' ? '1' : '2'}`;
    void (async () => {
      await this.#bounded(this.#client.put(key).value(JSON.stringify(event)).exec());
      if (event.action !== 'elected') return;
      const kept = await this.#bounded(this.#client.getAll().prefix(this.#eventsDir).sort('Key', 'Descend').limit(keep).keys());
      const oldest = kept[kept.length - 1];
      if (kept.length === keep && oldest !== undefined) await this.#bounded(this.#client.delete().inRange({ start: this.#eventsDir, end: oldest }).exec());
    })().catch(() => undefined);
  }

  /** Delivers notifications after the step, in order, never inside the machine's step. */
  #later(deliver: () => void): void {
    this.#pending.push(deliver);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    for (const deliver of batch) deliver();
  }

  async #closeAll(): Promise<void> {
    // A leader's key goes first, with its release mark (the standbys then know it was no crash);
    // the revoke ends the lease. One bound for both: an etcd that does not answer costs shutdown
    // maxDrift, not twice that.
    const release = this.#releaseOnClose;
    this.#releaseOnClose = undefined;
    const leases = [...this.#leases.values()];
    this.#leases.clear();
    await this.#bounded(
      (async () => {
        if (release !== undefined) await this.#releaseLeading(release.key, release.epoch).catch(() => undefined);
        await Promise.all(leases.map((l) => l.revoke().catch(() => undefined)));
      })(),
    ).catch(() => undefined);
    await this.#watcher?.cancel().catch(() => undefined);
    this.#loop.dispatch({ type: 'closed' });
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#closing.abort();
    this.#loop.stop();
    this.#signals.abortAll();
    this.#client.close();
    // The last role change (to `stopped`) reaches roleChanged listeners before shutdown() resolves.
    this.#flush();
    this.endChangeStreams();
    this.#rejectStarted(new FailoverError('ERR_FAILOVER_LIFECYCLE', 'shut down before the first role settled'));
    this.#resolveClosed();
  }
}
