/**
 * The Watcher: keeps one process of a group primary over a ZeroMQ endpoint.
 *
 * This file is the driver around the pure state machine in `core/heartbeat-machine.ts`: it
 * feeds the machine inputs (messages, timer ticks, outcomes of I/O), runs the effects it asks
 * for, and delivers notifications to listeners without ever letting a listener block or throw
 * into the machine. Every decision is the machine's.
 *
 * Guarantees (docs/GUARANTEES.md):
 * - at most one primary per endpoint on one host: the primary holds an exclusive bind;
 * - epochs only grow, across restarts too (state file in `workdir`);
 * - `onDemote` runs once per resolved `onPromote`, after it; on `shutdown()` it runs before the
 *   farewell, so the successor's `onPromote` starts after this node let go;
 * - listeners run after the state changed, asynchronously, and their throws are caught;
 * - a node whose tcp endpoint is not an address of this host (decided once in start(), see
 *   `transport/zmq/endpoint-locality.ts`) is an observer: no presence, no bind, no promotion.
 *
 * @module
 */
import {
  epochExhausted,
  initialState,
  MAX_EPOCH,
  step,
  ownHeartbeatSeenAt,
  type Effect,
  type EndpointTheft,
  type Input,
  type MachineState,
  type Notification,
  type Phase,
  type PrimaryLostReason,
  type PromoteReason,
  type Role,
  type RoleChangeReason,
} from './core/heartbeat-machine.js';
import { FailoverError } from './errors.js';
import { judgeHealth, type Health } from './health.js';
import { resolveOptions, type ResolvedOptions, type WatcherOptions } from './options.js';
import { decode, encode, encodeFromTemplate, messageTemplate, type MessageTemplate } from './protocol/codec.js';
import {
  parsePresence,
  PROBE_PREFIX,
  presenceTopic,
  PROTOCOL_VERSION,
  REJECT_REASONS,
  type RejectReason,
  type Topic,
  type Payload,
} from './protocol/messages.js';
import { callSettled, TermSignals } from './election/driver.js';
import { Notifier } from './runtime/notifier.js';
import { systemClock, type Clock, type TimerHandle } from './runtime/clock.js';
import { prefixed, silentLogger, type Logger } from './runtime/logger.js';
import { StateFile } from './runtime/state-file.js';
import { rehearseTakeovers } from './core/rehearsal.js';
import { StepLoop } from './runtime/step-loop.js';
import { fenceProcess, ownProcStart } from './runtime/process-identity.js';
import type { Frames, Transport } from './transport/transport.js';
import { ZmqTransport } from './transport/zmq/zmq-transport.js';
import { endpointLocality, systemLocalityProbe, type LocalityProbe } from './transport/zmq/endpoint-locality.js';
import { RehearsalTransport } from './transport/memory/rehearsal-transport.js';
import { checkTransportDeps } from './transport/check-transport.js';
import { resolveMetadata } from './metadata-option.js';
import { formatMetadata, NO_METADATA, type Metadata } from './protocol/metadata.js';
import { hostname } from 'node:os';
import type { Election, ElectionEvents, ElectionNode } from './election/contract.js';

/** A role transition, as delivered by `roleChanged` and `roleChanges()`. */
export interface RoleChange {
  readonly from: Role;
  readonly to: Role;
  /** The epoch of the term begun (to primary) or ended (from primary). */
  readonly epoch: number;
  readonly reason: RoleChangeReason;
  /** When the role changed: ms since the Unix epoch, sub-millisecond precision. */
  readonly at: number;
  readonly instanceId: string;
}

/** A secondary started following a (new) primary. */
export interface PrimaryChangedEvent {
  readonly instanceId: string;
  readonly epoch: number;
  readonly pid: number;
  readonly host: string;
  readonly at: number;
  /** The application metadata it announces (its `metadata` option); `{}` when none. */
  readonly metadata: Metadata;
}

/** The primary this secondary follows (same instanceId and epoch) announced other metadata. */
export interface PrimaryMetadataChangedEvent {
  readonly instanceId: string;
  readonly epoch: number;
  /** The metadata it announces now; `{}` when none. */
  readonly metadata: Metadata;
  readonly at: number;
}

/** A secondary considers the primary gone. */
export interface PrimaryLostEvent {
  /** The lost primary, when one had been heard. */
  readonly instanceId: string | undefined;
  readonly epoch: number | undefined;
  readonly cause: PromoteReason;
  /**
   * True only when this node tries to take over now: the primary gave the endpoint up
   * (`shutdown`) or is gone (`disconnect`, confirmed by this node's own bind), and failover is
   * enabled. It may still lose the race to another secondary. False for a silence (`reason:
   * 'suspected'`: a hung primary still holds the endpoint; this node takes over only if a later
   * bind succeeds, which `roleChanged` then reports), when failover is disabled, on an
   * observer, and when no valid epoch is left.
   */
  readonly willPromote: boolean;
  /** What `willPromote` rests on: `taking-over`, `suspected`, `disabled`, `observer` or `epoch-exhausted`. */
  readonly reason: PrimaryLostReason;
  readonly at: number;
}

/**
 * A primary's filesystem socket (`ipc:///PATH`) is no longer the file it bound: another process
 * unlinked it, or put its own socket there. Nodes that connect from now on reach that process,
 * not this primary. The primary keeps its role and reports it (docs/GUARANTEES.md).
 */
export interface EndpointStolenEvent {
  readonly endpoint: string;
  /** The socket file's path. */
  readonly path: string;
  /** `gone`: no file at the path; `replaced`: another file there. */
  readonly found: EndpointTheft;
  /** What was found, for people: e.g. `another socket (inode 1234) is at the path`. */
  readonly detail: string;
  readonly at: number;
}

/** An `onPromote` (or the state file) failed; the node stays secondary and retries. */
export interface PromotionFailedEvent {
  readonly epoch: number;
  readonly reason: PromoteReason;
  readonly error: string;
  readonly retryInMs: number;
  readonly at: number;
}

/**
 * A promotion refused because no valid epoch is left: the next epoch would exceed 2^53 - 1, the
 * largest every node accepts. The node does not bind or announce anything, keeps following
 * whoever holds the endpoint, and does not try again for this loss. An operator resets the epoch
 * (README, "Resetting the epoch").
 */
export interface EpochExhaustedEvent {
  readonly code: 'ERR_FAILOVER_EPOCH_EXHAUSTED';
  /** The highest epoch known (2^53 - 1 = 9007199254740991). */
  readonly epoch: number;
  /** What would have promoted this node. */
  readonly reason: PromoteReason;
  readonly error: string;
  readonly at: number;
}

/** The watcher's events. No event is called `error`: a watcher never throws at you. */
export interface WatcherEvents {
  // Method syntax: a listener of the contract's wider event types (ElectionEvents) fits too.
  roleChanged(change: RoleChange): void;
  primaryChanged(event: PrimaryChangedEvent): void;
  primaryLost(event: PrimaryLostEvent): void;
  promotionFailed(event: PromotionFailedEvent): void;
  epochExhausted(event: EpochExhaustedEvent): void;
  endpointStolen(event: EndpointStolenEvent): void;
  primaryMetadataChanged(event: PrimaryMetadataChangedEvent): void;
}

/**
 * One node as seen by `liveNodes()`: the contract's {@link ElectionNode}. (Before 0.2 the Watcher
 * listed an `observer` flag; `eligible` replaces it: false for an observer, a disabled node, or
 * one with no valid epoch left.) A primary's entry carries its announced `metadata` (`{}` when none).
 */
export type LiveNode = ElectionNode;

/** What `status()` returns: a plain, JSON-friendly object. */
export interface WatcherStatus {
  readonly backend: 'zmq';
  readonly instanceId: string;
  readonly endpoint: string;
  readonly role: Role;
  /** Finer than role: e.g. `promoting` while onPromote runs. */
  readonly phase: Phase;
  /**
   * Own epoch while primary (from the claim until the endpoint is released); otherwise the
   * highest epoch known (wire, state file, own), e.g. the epoch of the node a primary stepped
   * down for.
   */
  readonly epoch: number;
  /**
   * True once the highest epoch known is 2^53 - 1 (or the state file held more): this node will
   * not promote again (no valid epoch is left) until an operator resets the epoch (README,
   * "Resetting the epoch"). A primary at that epoch keeps its role.
   */
  readonly epochExhausted: boolean;
  readonly enabled: boolean;
  /**
   * True when the endpoint is not an address of this host: this node follows the primary but
   * never binds the endpoint, so it never promotes, whatever `enabled` says.
   */
  readonly observer: boolean;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  /**
   * On a primary of a filesystem endpoint: its socket file is no longer the one it bound (see
   * `endpointStolen`); undefined otherwise. Stays until the node gives the endpoint up.
   */
  readonly endpointStolen:
    | { readonly path: string; readonly found: EndpointTheft; readonly detail: string; readonly sinceMs: number }
    | undefined;
  /** The primary this secondary follows; on a primary, itself (its own pid, host and last heartbeat). */
  readonly primary:
    | {
        readonly instanceId: string;
        readonly epoch: number;
        readonly pid: number;
        readonly host: string;
        readonly seq: number;
        /** Wall-clock ms of its last heartbeat. */
        readonly lastHeartbeatAt: number;
        /** ms since its last heartbeat. */
        readonly ageMs: number;
        /** Its announced application metadata; `{}` when none. */
        readonly metadata: Metadata;
      }
    | undefined;
  /** This node's own metadata (the `metadata` option, or the last `setMetadata()`), announced while primary. */
  readonly metadata: Metadata;
  /** Wall-clock ms of the last heartbeat from the primary; undefined before the first and on a primary. */
  readonly lastHeartbeatAt: number | undefined;
  /** True while this secondary considers the primary lost (silence or shutdown) and none is heard. */
  readonly primarySuspected: boolean;
  readonly suspicion: { readonly cause: PromoteReason; readonly sinceMs: number } | undefined;
  /**
   * On a primary: ms since its freshest heartbeat known to have gone through the endpoint: the
   * last one its own subscriber read back, or any sent since on that same connection (after the
   * first comes back, the subscriber stops reading them until its connection changes;
   * PROTOCOL.md section 2.3).
   */
  readonly ownHeartbeatAgeMs: number | undefined;
  readonly heartbeatsSent: number;
  readonly heartbeatsSeen: number;
  readonly promotions: number;
  readonly demotions: number;
  readonly failedPromotions: number;
  readonly lostRaces: number;
  readonly stalls: number;
  /** While primary: presence of further nodes ignored because 1024 were connected already. */
  readonly presenceDropped: number;
  /** While primary: liveness probes not answered because one was answered less than 10 ms before. */
  readonly probesIgnored: number;
  /**
   * Primaries followed whose epoch was lower than the highest epoch this node had seen (each
   * logged as a warning naming both epochs): epochs went backwards, e.g. a holder that does not
   * share the cluster's state file, so fencing tokens may repeat.
   */
  readonly staleEpochFollows: number;
  /** Promotions refused because no valid epoch was left (each also an `epochExhausted` event). */
  readonly epochRefusals: number;
  /** While primary: welcome heartbeats sent to newly connected subscribers (at most one per 10 ms). */
  readonly welcomesSent: number;
  /** While primary: new subscribers greeted by a welcome already due rather than one of their own. */
  readonly welcomesCoalesced: number;
  /**
   * Invalid messages dropped, in all and by reason. `metadata` counts valid messages whose
   * `metadata` field alone was dropped (malformed or over its limits): the message itself was
   * accepted, so `total` does not include them.
   */
  readonly dropped: { readonly total: number; readonly metadata: number } & Readonly<Record<RejectReason, number>>;
  /** Role changes dropped by slow `roleChanges()` consumers. */
  readonly notificationsDropped: number;
  /** Listener calls that threw or rejected. */
  readonly listenerErrors: number;
  /** Whether CURVE authentication is on (the keys themselves are never shown). */
  readonly curve: boolean;
  /**
   * While primary (cumulative): connections to the endpoint that failed the handshake (without
   * CURVE, wrong keys or a client key not admitted).
   */
  readonly peersRefused: number;
  /** While primary (cumulative): messages from subscribers that were not a well-formed (un)subscription. */
  readonly subscriptionsIgnored: number;
  /**
   * While primary (cumulative): times it paused reading what subscribers send, because they sent
   * more than 4096 at once or 1000 a second (a subscription flood; docs/SECURITY.md).
   */
  readonly subscriptionsDelayed: number;
  /**
   * This node's connections to the endpoint whose handshake failed (cumulative): a holder that
   * lacks the cluster's CURVE server key or does not admit this node's key is never followed.
   */
  readonly handshakesFailed: number;
  /** Times this node reconnected to the endpoint itself after a protocol error (ZeroMQ does not retry those). */
  readonly reconnects: number;
  /** Dry runs of a takeover completed so far (the `rehearsals` option). */
  readonly rehearsals: number;
}

/**
 * The watcher's second constructor argument: `transport` replaces the ZeroMQ transport it would
 * open on `endpoint` (see `failover-watch/transport` and docs/TRANSPORT.md); the rest are for
 * the project's own tests.
 */
export interface WatcherDeps {
  /**
   * The transport to reach the endpoint through (it takes the transport: `shutdown()` closes it).
   * Checked at construction; not with `curve`.
   */
  readonly transport?: Transport;
  readonly random?: () => number;
  /** The state file (a scratch one for a rehearsal). */
  readonly stateFile?: StateFile;
  /** This watcher is itself a rehearsal: it neither warms up nor rehearses. */
  readonly rehearsal?: boolean;
  /** How start() tells whether the endpoint is an address of this host. */
  readonly locality?: LocalityProbe;
  /** The platform the options are checked against (src/platform.ts); tests inject another. @default process.platform */
  readonly platform?: NodeJS.Platform;
}

type Deferred<T> = { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void };

/** The scratch watcher's id in a rehearsal (it never meets another node). */
const REHEARSAL_ID = 'rehearsal';
/**
 * How often rehearsals look again whether the node is a secondary at rest (besides whenever the
 * watcher has news: a role change, a primary found or lost).
 */
const REHEARSAL_WAIT_MS = 1000;
/** A rehearsal's takeover needs no timer; this long without one means it cannot happen. */
const REHEARSAL_TIMEOUT_MS = 1000;

/** True for a host name or address that only this host can reach. */
function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Keeps one process of a group primary and hands the role over when it stops, crashes or hangs.
 *
 * @example
 * const watcher = new Watcher({
 *   endpoint: 'tcp://127.0.0.1:5555',
 *   enabled: true,
 *   onPromote: async ({ epoch }) => console.log('primary now, epoch', epoch),
 * });
 * await watcher.start();
 * process.on('SIGTERM', () => void watcher.shutdown());
 */
export class Watcher extends Notifier<WatcherEvents, RoleChange> implements Election<WatcherStatus> {
  /** The backend, as the election contract names it. */
  readonly backend = 'zmq' as const;

  /**
   * The events with listeners. Typed as the contract's so that a Watcher is an `Election`; it
   * also names the Watcher's own events (`epochExhausted`, `endpointStolen`) when they have some.
   */
  override eventNames(): Array<keyof ElectionEvents> {
    return super.eventNames() as Array<keyof ElectionEvents>;
  }
  readonly options: ResolvedOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #logger: Logger;
  readonly #transport: Transport;
  readonly #stateFile: StateFile;
  readonly #host = hostname();
  readonly #procStart = ownProcStart();
  readonly #loop: StepLoop<MachineState, Input, Effect>;
  #ops: Promise<unknown> = Promise.resolve();
  /** Socket operations started or waiting, and not settled yet. */
  #opsRunning = 0;
  /** Of those, binds and releases. */
  #exclusiveRunning = 0;
  /** Operations waiting for the ones before them. */
  #opsWaiting = 0;
  /** onPromote's signal, per term. */
  readonly #signals = new TermSignals();
  #started: Deferred<void> | undefined;
  #stopped: Deferred<void> | undefined;
  #forceTimer: TimerHandle | undefined;
  #pending: Array<{ notification: Notification; at: number }> = [];
  #flushScheduled = false;
  #dropped: Record<RejectReason, number> = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<
    RejectReason,
    number
  >;
  /** Messages whose metadata alone was dropped (`status().dropped.metadata`). */
  #metadataDropped = 0;
  /** The metadata this node announces while primary. */
  #metadata: Metadata;
  /**
   * The heartbeat as last encoded, but for its seq and sentAt, and what it was made of: a
   * primary at rest fills it in rather than encoding the whole map on each heartbeat.
   */
  #beatTemplate:
    | {
        readonly epoch: number;
        readonly members: ReadonlyArray<readonly [string, number]> | undefined;
        readonly endpointStolen: EndpointTheft | undefined;
        readonly metadata: Metadata;
        /** Built at the second heartbeat made of the same: never on a takeover's clock. */
        template: MessageTemplate | undefined;
      }
    | undefined;
  #finished = false;
  /** This watcher is a rehearsal's scratch watcher (see WatcherDeps.rehearsal). */
  readonly #isRehearsal: boolean;
  readonly #locality: LocalityProbe;
  /** The payload of the last heartbeat this node published, until it comes back (see #onFrames). */
  #lastBeat: Frames | undefined;
  /** The seq of {@link #lastBeat}. */
  #lastBeatSeq = 0;
  /** The rehearsals running in the background; shutdown() waits for them. */
  #rehearsing: Promise<void> | undefined;
  #rehearsalsDone = 0;
  /** Ends the rehearsals' current wait (set while one waits); `onNews`: on any notification too. */
  #rehearsalWait: { readonly wake: () => void; readonly onNews: boolean } | undefined;

  /** A watcher that starts as primary (fails if the endpoint is taken). */
  static forPrimary(options: Omit<WatcherOptions, 'role'>): Watcher {
    return new Watcher({ ...options, role: 'primary' });
  }

  /** A watcher that starts as secondary, following whoever holds the endpoint. */
  static forSecondary(options: Omit<WatcherOptions, 'role'>): Watcher {
    return new Watcher({ ...options, role: 'secondary' });
  }

  /** Validates the options (throws `InvalidOptionError`); does not touch the network until `start()`. */
  constructor(options: WatcherOptions, deps: WatcherDeps = {}) {
    super();
    this.options = resolveOptions(options, deps?.platform);
    checkTransportDeps(deps, this.options.curve !== undefined);
    this.#isRehearsal = deps.rehearsal === true;
    this.#locality = deps.locality ?? systemLocalityProbe;
    const o = this.options;
    this.#metadata = o.metadata;
    this.#clock = o.clock ?? systemClock;
    this.#random = deps.random ?? Math.random;
    this.#logger = prefixed(o.logger ?? silentLogger, o.instanceId);
    this.#transport = deps.transport ?? new ZmqTransport(o.endpoint, { curve: o.curve, logger: this.#logger });
    this.#stateFile = deps.stateFile ?? new StateFile(o.workdir);
    this.#loop = new StepLoop<MachineState, Input, Effect>({
      initial: initialState(
      {
        instanceId: o.instanceId,
        initialRole: o.role,
        heartbeatInterval: o.heartbeatInterval,
        heartbeatTimeout: o.heartbeatTimeout,
        retryInterval: o.retryInterval,
        maxRetryInterval: o.maxRetryInterval,
        fastRetryInterval: 1,
        priority: o.priority,
        priorityStagger: o.priorityStagger,
        preempt: o.preempt,
        preemptDelay: o.preemptDelay,
        fencing: o.fencing,
        livenessProbeTimeout: o.livenessProbeTimeout,
        probeWindow: Math.min(250, o.heartbeatTimeout),
        stallThreshold: Math.max(50, Math.floor(o.heartbeatInterval / 2)),
        drainDelay: Math.min(50, o.heartbeatInterval),
        quietsOwnHeartbeats: typeof this.#transport.hearOwnHeartbeats === 'function',
      },
      o.enabled,
    ),
      step,
      clock: this.#clock,
      random: this.#random,
      run: (effect) => this.#run(effect),
      after: (input) => {
        if (input.type === 'closed') this.#finishStop();
      },
      tick: { type: 'tick' },
    });
  }

  /** This node's id. */
  get instanceId(): string {
    return this.options.instanceId;
  }

  /** The current role. */
  get role(): Role {
    return this.#loop.state.role;
  }

  /** Own epoch while primary; otherwise the highest epoch known (as `status().epoch`). */
  get epoch(): number {
    return this.#loop.state.epoch;
  }

  /** Whether failover (promotion of this secondary) is enabled. */
  get enabled(): boolean {
    return this.#loop.state.enabled;
  }

  /** Wall-clock ms of the last heartbeat from the primary; undefined before the first and on a primary. */
  get lastHeartbeat(): number | undefined {
    return this.#loop.state.holdsEndpoint ? undefined : this.#loop.state.primary?.lastSeenWallAt;
  }

  /**
   * Joins the cluster. Resolves once the initial role is settled: secondary, or primary after
   * `onPromote` resolved. Rejects with `ERR_FAILOVER_ENDPOINT_IN_USE` when a `primary` watcher
   * finds the endpoint taken. Calling it again returns the same promise.
   */
  start(): Promise<void> {
    if (this.#started !== undefined) return this.#started.promise;
    const started = deferred<void>();
    // Handled here so a start() nobody awaits cannot crash the process; callers still see it.
    started.promise.then(
      () => this.#startRehearsals(),
      () => undefined,
    );
    this.#started = started;
    void this.#boot().catch((error: unknown) => {
      started.reject(error);
    });
    return started.promise;
  }

  async #boot(): Promise<void> {
    // shutdown() came first (start() after shutdown(), or a shutdown() while the state file was
    // read): start() must not wait for ever.
    const shutDown = (): boolean => {
      if (this.#loop.state.phase === 'idle') return false;
      this.#started?.reject(new FailoverError('ERR_FAILOVER_LIFECYCLE', 'the watcher was shut down before it started'));
      return true;
    };
    if (shutDown()) return;
    // Refuse a work directory another user could have prepared before reading anything from it.
    this.#stateFile.checkDirectory();
    const floor = this.#stateFile.epochFloor();
    const fileEpoch = floor.epoch;
    if (fileEpoch >= MAX_EPOCH) {
      this.#logger.error(
        `${floor.problem ?? `state file ${this.#stateFile.path} holds epoch ${fileEpoch} = 2^53 - 1, the last valid epoch`}; ` +
          'this node will not promote (ERR_FAILOVER_EPOCH_EXHAUSTED)',
      );
    } else if (floor.problem !== undefined) this.#logger.warn(`${floor.problem}; starting from it and the epochs seen on the wire`);
    if (shutDown()) return;
    this.#loop.state = { ...this.#loop.state, epoch: fileEpoch, knownEpoch: fileEpoch };
    const endpoint = this.options.endpoint;
    // Decided once, before the socket opens: an observer announces no presence (so no primary
    // lists it as a candidate successor, nor steps down for it) and never binds.
    // (ipc endpoints are always local; a rehearsal's scratch watcher has no socket.)
    const locality = endpoint.kind === 'tcp' && !this.#isRehearsal ? await endpointLocality(endpoint, this.#locality) : undefined;
    if (locality !== undefined && shutDown()) return;
    const observer = locality?.local === false;
    if (observer) {
      this.#logger.info(
        `${endpoint.address} is not an address of this host (${locality.detail}): this node observes only; ` +
          'it follows the primary but never binds the endpoint and never promotes',
      );
    } else if (locality?.local === 'unknown') {
      this.#logger.warn(`cannot tell whether ${endpoint.address} is an address of this host: ${locality.detail}`);
    }
    if (!this.#isRehearsal && !observer) this.#warmUp();
    if (endpoint.kind === 'tcp' && this.options.curve === undefined && !isLoopbackHost(endpoint.host)) {
      this.#logger.warn(
        `${endpoint.address} is not a loopback address and CURVE is off: anyone who can reach it can read ` +
          'the heartbeats, join, or bind the endpoint first and be followed as primary; set the `curve` option (docs/SECURITY.md)',
      );
    }
    await this.#transport.open({
      onPresence: (joined, topic) => {
        if (topic.startsWith(PROBE_PREFIX)) {
          if (joined) this.#dispatch({ type: 'livenessProbed' });
          return;
        }
        const member = parsePresence(topic);
        if (member !== undefined) this.#dispatch({ type: 'presence', joined, ...member });
      },
      onSubscribed: () => this.#dispatch({ type: 'subscribed' }),
      onMessage: (frames) => this.#onFrames(frames),
      onEvent: (event) => {
        this.#logger.debug(`endpoint ${event.type}`);
        if (event.type === 'disconnected') this.#dispatch({ type: 'disconnected' });
        else if (event.type === 'connected') this.#dispatch({ type: 'connected' });
        else if (event.type === 'endpointStolen') this.#dispatch({ type: 'endpointStolen', found: event.found, detail: event.detail });
      },
    }, observer ? undefined : presenceTopic(this.options.instanceId, this.options.priority));
    this.#dispatch(observer ? { type: 'start', observer } : { type: 'start' });
  }

  /**
   * Leaves the cluster. A primary aborts `onPromote`'s signal, runs `onDemote`, publishes
   * `instance.shutdown`, waits until it went through the endpoint and closes; a secondary just
   * closes. Idempotent: later calls return the first call's promise. Leaves no socket or timer.
   */
  shutdown(): Promise<void> {
    if (this.#stopped !== undefined) return this.#stopped.promise;
    const stopped = deferred<void>();
    this.#stopped = stopped;
    this.#rehearsalWait?.wake();
    if (this.#finished) {
      // Already stopped on its own (a start() that failed closed it): nothing is left to do.
      this.#resolveStopped();
      return stopped.promise;
    }
    if (this.#loop.state.phase === 'idle' && this.#started === undefined) {
      this.#dispatch({ type: 'shutdown' });
      return stopped.promise;
    }
    this.#forceTimer = this.#clock.setTimer(() => this.#forceSettle(), this.options.shutdownTimeout);
    this.#dispatch({ type: 'shutdown' });
    return stopped.promise;
  }

  /** `await using watcher = new Watcher(...)` shuts it down at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  /**
   * Hands the primary role over gracefully: runs `onDemote`, announces `instance.shutdown` so a
   * secondary takes over at once, and stays secondary (out of the next election for
   * `heartbeatTimeout`). No effect unless primary.
   */
  stepDown(): void {
    this.#dispatch({ type: 'stepDown' });
  }

  /** Switches failover on or off at runtime; switching on while the primary is lost promotes at once. */
  setEnabled(enabled: boolean): void {
    if (typeof enabled !== 'boolean') {
      throw new FailoverError('ERR_FAILOVER_INVALID_OPTION', `setEnabled expects a boolean, received ${typeof enabled}`);
    }
    this.#dispatch({ type: 'setEnabled', enabled });
  }

  /**
   * Replaces the application metadata this node announces (see the `metadata` option). Validated
   * like the option: throws `InvalidOptionError` naming the key. A primary announces it at once
   * with an extra heartbeat (at most one per 10 ms, like a welcome), so followers get
   * `primaryMetadataChanged` within milliseconds; a secondary announces it when it becomes primary.
   *
   * @example
   * watcher.setMetadata({ port: String(server.address().port) });
   */
  setMetadata(metadata: Readonly<Record<string, string>>): void {
    this.#metadata = resolveMetadata(metadata);
    this.#dispatch({ type: 'metadataUpdated' });
  }

  /** This node's own metadata, announced while primary. */
  get metadata(): Metadata {
    return this.#metadata;
  }

  /**
   * Role changes as an async iterator with a bounded buffer (`notificationBuffer`); a slow
   * consumer loses the oldest changes, counted in `status().notificationsDropped`. Ends after
   * the change to `stopped`.
   *
   * @example
   * for await (const change of watcher.roleChanges()) console.log(change.from, '->', change.to);
   */
  roleChanges(): AsyncIterableIterator<RoleChange> {
    return this.openChangeStream(this.options.notificationBuffer);
  }

  /** A snapshot of the watcher's state and counters. */
  status(): WatcherStatus {
    const s = this.#loop.state;
    const now = this.#clock.now();
    const p = s.holdsEndpoint ? undefined : s.primary;
    const total = Object.values(this.#dropped).reduce((a, b) => a + b, 0);
    const transportCounters = this.#transport.counters?.();
    const own = s.holdsEndpoint && s.role === 'primary';
    const ownSeenAt = ownHeartbeatSeenAt(s);
    return {
      backend: 'zmq',
      instanceId: this.options.instanceId,
      endpoint: this.options.endpoint.address,
      role: s.role,
      phase: s.phase,
      epoch: s.epoch,
      epochExhausted: epochExhausted(s),
      enabled: s.enabled,
      observer: s.observer,
      heartbeatInterval: this.options.heartbeatInterval,
      heartbeatTimeout: this.options.heartbeatTimeout,
      endpointStolen:
        s.endpointStolen === undefined || this.options.endpoint.kind !== 'ipc-path'
          ? undefined
          : {
              path: this.options.endpoint.path,
              found: s.endpointStolen.found,
              detail: s.endpointStolen.detail,
              sinceMs: Math.max(0, now - s.endpointStolen.since),
            },
      primary: own
        ? {
            instanceId: this.options.instanceId,
            epoch: s.epoch,
            pid: process.pid,
            host: this.#host,
            seq: s.seq,
            lastHeartbeatAt: ownSeenAt === undefined ? this.#clock.wallNow() : this.#clock.wallNow() - Math.max(0, now - ownSeenAt),
            ageMs: ownSeenAt === undefined ? 0 : Math.max(0, now - ownSeenAt),
            metadata: this.#metadata,
          }
        : p === undefined
          ? undefined
          : {
              instanceId: p.instanceId,
              epoch: p.epoch,
              pid: p.pid,
              host: p.host,
              seq: p.seq,
              lastHeartbeatAt: p.lastSeenWallAt,
              ageMs: Math.max(0, now - p.lastSeenAt),
              metadata: p.metadata ?? NO_METADATA,
            },
      metadata: this.#metadata,
      lastHeartbeatAt: p?.lastSeenWallAt,
      primarySuspected: s.loss !== undefined && !s.holdsEndpoint,
      suspicion:
        s.loss === undefined || s.holdsEndpoint ? undefined : { cause: s.loss.cause, sinceMs: Math.max(0, now - s.loss.since) },
      ownHeartbeatAgeMs: ownSeenAt === undefined ? undefined : Math.max(0, now - ownSeenAt),
      ...s.counters,
      dropped: { total, ...this.#dropped, metadata: this.#metadataDropped },
      notificationsDropped: this.notificationsDropped,
      listenerErrors: this.listenerErrors,
      curve: this.options.curve !== undefined,
      peersRefused: transportCounters?.peersRefused ?? 0,
      subscriptionsIgnored: transportCounters?.subscriptionsIgnored ?? 0,
      subscriptionsDelayed: transportCounters?.subscriptionsDelayed ?? 0,
      handshakesFailed: transportCounters?.handshakesFailed ?? 0,
      reconnects: transportCounters?.reconnects ?? 0,
      rehearsals: this.#rehearsalsDone,
    };
  }

  /**
   * Whether this node is healthy in its role: exactly what `failover-watch run --health`'s
   * `GET /healthz` answers (docs/CLI.md, "Metrics and health"). A primary is healthy while
   * its heartbeats go through the endpoint on time (`ownHeartbeatAgeMs`) and its socket file
   * was not taken; a secondary while it hears a live primary or is taking over.
   *
   * @example
   * const h = watcher.health(); // { ok: true, status: 200, reason: 'following a' }
   * res.writeHead(h.status).end(`${h.ok ? 'ok' : 'unhealthy'}: ${h.reason}\n`);
   */
  health(): Health {
    return judgeHealth(this.status());
  }

  /**
   * The nodes of the cluster as this node knows them (asynchronous since 0.2, as the election
   * contract has it): the primary (itself, or the one it
   * follows) and the secondaries connected to it (a primary learns them from their presence on
   * the endpoint; a secondary from the primary's heartbeats).
   */
  liveNodes(): Promise<ElectionNode[]> {
    return Promise.resolve(this.#liveNodes());
  }

  #liveNodes(): ElectionNode[] {
    const s = this.#loop.state;
    const wallNow = this.#clock.wallNow();
    const self = this.options.instanceId;
    const nodes: ElectionNode[] = [];
    if (s.role === 'stopped' || s.role === 'starting') return nodes;
    const selfEligible = !s.observer && s.enabled && !epochExhausted(s);
    // Observers announce no presence, so every other node listed is a candidate.
    if (s.holdsEndpoint) {
      nodes.push({ instanceId: self, role: 'primary', priority: this.options.priority, epoch: s.epoch, lastSeenAt: wallNow, self: true, eligible: selfEligible, metadata: this.#metadata });
      for (const [id, m] of s.members) {
        nodes.push({ instanceId: id, role: 'secondary', priority: m.priority, epoch: undefined, lastSeenAt: wallNow, self: false, eligible: true });
      }
      return nodes;
    }
    const p = s.primary;
    if (p !== undefined) {
      const seen = p.lastSeenWallAt;
      nodes.push({ instanceId: p.instanceId, role: 'primary', priority: p.priority, epoch: p.epoch, lastSeenAt: seen, self: false, eligible: true, metadata: p.metadata ?? NO_METADATA });
      for (const [id, priority] of s.lastMembers) {
        if (id !== self) nodes.push({ instanceId: id, role: 'secondary', priority, epoch: undefined, lastSeenAt: seen, self: false, eligible: true });
      }
    }
    nodes.push({ instanceId: self, role: 'secondary', priority: this.options.priority, epoch: undefined, lastSeenAt: wallNow, self: true, eligible: selfEligible });
    return nodes;
  }

  /** One human line for diagnostics. */
  formatStatus(): string {
    const st = this.status();
    const parts = [`${st.instanceId}: ${st.role}${st.phase !== st.role ? ` (${st.phase})` : ''}, epoch ${st.epoch}`];
    if (st.role === 'primary') {
      parts.push(`${st.heartbeatsSent} heartbeats sent every ${st.heartbeatInterval} ms`);
      if (Object.keys(st.metadata).length > 0) parts.push(`metadata ${formatMetadata(st.metadata)}`);
      if (st.endpointStolen !== undefined) parts.push(`ENDPOINT STOLEN: ${st.endpointStolen.detail}`);
    } else if (st.primary !== undefined) {
      parts.push(
        `following ${st.primary.instanceId} (pid ${st.primary.pid} on ${st.primary.host}, epoch ${st.primary.epoch}), last heartbeat ${Math.round(st.primary.ageMs)} ms ago`,
      );
      if (Object.keys(st.primary.metadata).length > 0) parts.push(`primary metadata ${formatMetadata(st.primary.metadata)}`);
    } else if (st.suspicion !== undefined) {
      parts.push(`primary lost (${st.suspicion.cause}) ${Math.round(st.suspicion.sinceMs)} ms ago`);
    } else if (st.role === 'secondary') {
      parts.push('no primary heard yet');
    }
    parts.push(st.observer ? 'observer (the endpoint is not on this host)' : `failover ${st.enabled ? 'enabled' : 'disabled'}`);
    if (st.epochExhausted && st.role !== 'primary') parts.push('no valid epoch left: will not promote (README, "Resetting the epoch")');
    if (st.dropped.total > 0) parts.push(`${st.dropped.total} invalid messages dropped`);
    if (st.dropped.metadata > 0) parts.push(`${st.dropped.metadata} invalid metadata dropped`);
    return parts.join('; ');
  }

  // -------------------------------------------------------------------------------------------

  #onFrames(frames: Buffer[]): void {
    // The heartbeat this node sent last, read back through the endpoint (a holder's own SUB):
    // known by its bytes (seq and sentAt make each one unique), not decoded again.
    const own = this.#lastBeat;
    if (own !== undefined && frames.length === 2 && frames[1]?.equals(own[1]) === true && frames[0]?.equals(own[0]) === true) {
      this.#lastBeat = undefined;
      this.#dispatch({ type: 'ownHeartbeat', seq: this.#lastBeatSeq });
      return;
    }
    const result = decode(frames);
    if (!result.ok) {
      this.#dropped[result.reason]++;
      this.#logger.debug(`dropped a message (${result.reason}): ${result.detail}`);
      return;
    }
    if (result.message.metadataRejected !== undefined) {
      this.#metadataDropped++;
      this.#logger.debug(`dropped the metadata of ${result.message.instanceId}'s message: ${result.message.metadataRejected}`);
    }
    this.#dispatch({ type: 'message', message: result.message, wallNow: this.#clock.wallNow() });
  }

  #dispatch(input: Input): void {
    this.#loop.dispatch(input);
  }

  /**
   * A secondary may follow for hours and then take over with code it never ran: V8 compiles a
   * function on its first call, and the first write checks the work directory. Run those paths
   * once now, off the clock: the state file's preparation, one encode, the machine's takeover
   * steps on a scratch state, and one AbortController (Node loads its internals on first use).
   * The transport warms its own bind and send paths when it opens.
   */
  #warmUp(): void {
    this.#stateFile.prepare();
    this.#frames('instance.heartbeat', 0, 0);
    rehearseTakeovers(this.#loop.state.config);
    void new AbortController().signal.aborted;
  }

  /** Starts the rehearsals (see the `rehearsals` option) in the background. */
  #startRehearsals(): void {
    // An observer never takes over: nothing to rehearse.
    if (this.#isRehearsal || this.options.rehearsals === 0 || this.#stopped !== undefined || this.#loop.state.observer) return;
    this.#rehearsing = this.#rehearse().catch((error: unknown) => {
      this.#logger.debug(`rehearsals ended: ${String(error)}`);
    });
  }

  /**
   * Runs the rehearsals one after another, each on a later turn of the event loop, and only
   * while this node is a secondary at rest, the role that takes over: not during a takeover,
   * whose CPU they would take, nor as primary, where they would only grow the process (the
   * memory V8 keeps for a while after them delays the crash detection of a primary, see
   * bench/README.md). Stops at shutdown() or at the first that fails (an unwritable work directory, say:
   * they are only worth their speed).
   */
  async #rehearse(): Promise<void> {
    const stateFile = new StateFile(this.options.workdir, { scratch: true });
    try {
      try {
        stateFile.writeSync({ epoch: 0, primary: null, updatedAt: 0 });
      } catch (error) {
        throw new Error(`no scratch state file: ${(error as Error).message}`);
      }
      while (this.#rehearsalsDone < this.options.rehearsals) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.#stopped !== undefined) return;
        if (!this.#atRest()) {
          // A primary leaves its role only through a role change, which is news: no timer
          // (it would wake a primary at rest every second for nothing).
          await this.#rehearsalPause(this.#loop.state.holdsEndpoint ? undefined : REHEARSAL_WAIT_MS, true);
          continue;
        }
        await this.#rehearseOnce(stateFile, this.#rehearsalsDone % 2 === 0 ? 'disconnect' : 'shutdown');
        if (this.#stopped !== undefined) return;
        this.#rehearsalsDone++;
      }
    } finally {
      stateFile.remove();
    }
  }

  /** A secondary neither taking over nor handing over: following a live primary, or none heard yet. */
  #atRest(): boolean {
    const s = this.#loop.state;
    return s.phase === 'secondary' && s.loss === undefined && s.probeUntil === undefined && !s.demoteOutstanding;
  }

  /** Resolves after `ms` (never, undefined), or at once when shutdown() is called (or, `onNews`, on a notification). */
  #rehearsalPause(ms: number | undefined, onNews: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.#rehearsalWait = undefined;
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(wake, ms);
      timer?.unref();
      this.#rehearsalWait = { wake, onNews };
    });
  }

  /**
   * One dry run: a scratch watcher (this one's timing and priority options, but a fixed id, a
   * transport with no socket, the scratch state file, the system clock, no logger or callbacks)
   * follows a made-up primary, takes over when that primary's connection drops (`disconnect`)
   * or it says goodbye (`shutdown`), and exits gracefully. The takeover needs no timer, only a
   * few turns of the event loop; rejects if it has not happened within a second.
   */
  async #rehearseOnce(stateFile: StateFile, cause: 'disconnect' | 'shutdown'): Promise<void> {
    const o = this.options;
    const transport = new RehearsalTransport();
    let onTakeover!: (tookOver: true) => void;
    const takeover = new Promise<true>((resolve) => {
      onTakeover = resolve;
    });
    const scratch = new Watcher(
      {
        endpoint: o.endpoint.address,
        instanceId: REHEARSAL_ID,
        workdir: o.workdir,
        role: 'secondary',
        enabled: true,
        heartbeatInterval: o.heartbeatInterval,
        heartbeatTimeout: o.heartbeatTimeout,
        retryInterval: o.retryInterval,
        maxRetryInterval: o.maxRetryInterval,
        shutdownTimeout: o.shutdownTimeout,
        notificationBuffer: o.notificationBuffer,
        priority: o.priority,
        priorityStagger: o.priorityStagger,
        preempt: o.preempt,
        preemptDelay: o.preemptDelay,
        fencing: o.fencing,
        livenessProbeTimeout: o.livenessProbeTimeout,
        onPromote: () => onTakeover(true),
      },
      { transport, stateFile, rehearsal: true },
    );
    try {
      await scratch.start();
      const payload = {
        version: PROTOCOL_VERSION,
        instanceId: `${REHEARSAL_ID}-primary`,
        epoch: scratch.epoch + 1,
        sentAt: systemClock.wallNow(),
        pid: process.pid,
        host: this.#host,
        heartbeatInterval: o.heartbeatInterval,
        priority: o.priority,
      };
      transport.deliver(encode('instance.heartbeat', { ...payload, seq: 1, members: [[REHEARSAL_ID, o.priority]] }));
      if (cause === 'disconnect') transport.disconnect();
      else transport.deliver(encode('instance.shutdown', { ...payload, seq: 2 }));
      const tookOver = await Promise.race([takeover, this.#rehearsalPause(REHEARSAL_TIMEOUT_MS, false).then(() => false)]);
      this.#rehearsalWait?.wake();
      if (!tookOver && this.#stopped === undefined) throw new Error(`no takeover on ${cause} within ${REHEARSAL_TIMEOUT_MS} ms`);
    } finally {
      await scratch.shutdown();
    }
  }

  /** Runs socket operations one after another, in the order the machine asked for them. */
  #serial<T>(op: () => Promise<T>, exclusive = true): Promise<T> {
    // Started at once when nothing needs to go first (a microtask later would cost a takeover
    // a turn; a takeover's bind is synchronous up to the bind itself, see zmq-transport.ts): a
    // bind or release when no operation runs; a publish when no bind or release runs and none
    // waits (the transport keeps publishes in order itself). Otherwise after the last one.
    const direct = this.#opsWaiting === 0 && this.#exclusiveRunning === 0 && (!exclusive || this.#opsRunning === 0);
    this.#opsRunning++;
    if (exclusive) this.#exclusiveRunning++;
    let next: Promise<T>;
    if (direct) {
      try {
        next = op();
      } catch (error) {
        next = Promise.reject(error);
      }
    } else {
      this.#opsWaiting++;
      const start = (): Promise<T> => {
        this.#opsWaiting--;
        return op();
      };
      next = this.#ops.then(start, start);
    }
    const done = (): void => {
      this.#opsRunning--;
      if (exclusive) this.#exclusiveRunning--;
    };
    this.#ops = next.then(done, done);
    return next;
  }

  #frames(
    topic: Topic,
    epoch: number,
    seq: number,
    members?: ReadonlyArray<readonly [string, number]>,
    endpointStolen?: EndpointTheft,
  ): Frames {
    const sentAt = this.#clock.wallNow();
    if (topic === 'instance.heartbeat') {
      const t = this.#beatTemplate;
      if (t === undefined || t.epoch !== epoch || t.members !== members || t.endpointStolen !== endpointStolen || t.metadata !== this.#metadata) {
        this.#beatTemplate = { epoch, members, endpointStolen, metadata: this.#metadata, template: undefined };
      } else {
        t.template ??= messageTemplate(topic, this.#payload(epoch, 0, 0, members, endpointStolen, topic));
        const frames = encodeFromTemplate(t.template, seq, sentAt);
        if (frames !== undefined) return frames;
      }
    }
    return encode(topic, this.#payload(epoch, seq, sentAt, members, endpointStolen, topic));
  }

  #payload(
    epoch: number,
    seq: number,
    sentAt: number,
    members: ReadonlyArray<readonly [string, number]> | undefined,
    endpointStolen: EndpointTheft | undefined,
    topic: Topic,
  ): Payload {
    return {
      version: PROTOCOL_VERSION,
      instanceId: this.options.instanceId,
      epoch,
      seq,
      sentAt,
      pid: process.pid,
      host: this.#host,
      heartbeatInterval: this.options.heartbeatInterval,
      priority: this.options.priority,
      procStart: this.#procStart,
      members,
      endpointStolen,
      // Announced with the heartbeats and the promotion (PROTOCOL.md section 11).
      metadata: topic === 'instance.shutdown' ? undefined : this.#metadata,
    };
  }

  #run(effect: Effect): void {
    switch (effect.type) {
      case 'bind':
        void this.#serial(() => this.#transport.bind()).then(
          (r) => this.#dispatch({ type: 'bindResult', outcome: r.outcome, detail: r.outcome === 'failed' ? r.detail : r.outcome }),
          (error: unknown) => this.#dispatch({ type: 'bindResult', outcome: 'failed', detail: String(error) }),
        );
        return;
      // The state file is read and written synchronously (about a tenth of a millisecond each
      // on a host that was idle, see state-file.ts) and the answer goes straight back into the
      // step loop, which queues it behind the current input: a takeover does not wait for a
      // turn of the event loop.
      case 'loadEpoch': {
        const floor = this.#stateFile.epochFloor();
        if (floor.problem !== undefined) this.#logger.error(`${floor.problem}; building on it and on the epochs seen on the wire`);
        this.#dispatch({ type: 'epochLoaded', fileEpoch: floor.epoch });
        return;
      }
      case 'saveState': {
        try {
          this.#stateFile.writeSync({
            epoch: effect.epoch,
            primary: effect.primary ? { instanceId: this.options.instanceId, pid: process.pid, host: this.#host } : null,
            updatedAt: this.#clock.wallNow(),
          });
        } catch (error) {
          this.#dispatch({ type: 'stateSaved', ok: false, detail: (error as Error).message });
          return;
        }
        this.#dispatch({ type: 'stateSaved', ok: true });
        return;
      }
      case 'publish': {
        const frames = this.#frames(effect.topic, effect.epoch, effect.seq, effect.members, effect.endpointStolen);
        if (effect.topic === 'instance.heartbeat') {
          this.#lastBeat = frames;
          this.#lastBeatSeq = effect.seq;
        }
        void this.#serial(() => this.#transport.publish(frames), false);
        return;
      }
      case 'release': {
        const farewell = effect.farewellSeq === undefined ? undefined : this.#frames('instance.shutdown', effect.epoch, effect.farewellSeq);
        void this.#serial(() => this.#transport.release(farewell)).catch((error: unknown) =>
          this.#logger.error(`releasing the endpoint failed: ${String(error)}`),
        );
        return;
      }
      case 'callPromote': {
        const { term, epoch, reason } = effect;
        const signal = this.#signals.open(term);
        const onPromote = this.options.onPromote;
        // Called in this tick, as soon as the step loop is idle (not a microtask later: that
        // would cost the takeover a turn): the state is already the promoting one, the
        // announcement and first heartbeat are sent, and whatever onPromote does to this
        // watcher (stepDown, shutdown, setEnabled) takes effect at once, aborting `signal`.
        this.#loop.whenIdle(() => callSettled(onPromote, { epoch, reason, signal }, 'onPromote', (error) => this.#promoteSettled(term, error)));
        return;
      }
      case 'abortPromote':
        this.#signals.abort(effect.term, new FailoverError('ERR_FAILOVER_LIFECYCLE', 'the primary role was lost'));
        return;
      case 'callDemote': {
        const { term, epoch, reason } = effect;
        this.#signals.abort(term, new FailoverError('ERR_FAILOVER_LIFECYCLE', `the primary role ended (${reason})`));
        const onDemote = this.options.onDemote;
        queueMicrotask(() =>
          callSettled(onDemote, { epoch, reason }, 'onDemote', (error) => {
            if (error !== undefined) this.#logger.error(`onDemote failed: ${String(error)}`);
            this.#dispatch({ type: 'demoteSettled', term });
          }),
        );
        return;
      }
      case 'hearOwnHeartbeats':
        this.#transport.hearOwnHeartbeats?.(effect.on);
        return;
      case 'startLivenessProbe':
      case 'endLivenessProbe':
        this.#transport.probe(`${PROBE_PREFIX}${this.options.instanceId}.${effect.nonce}`, effect.type === 'startLivenessProbe');
        return;
      case 'fence': {
        const { pid, host, procStart } = effect;
        void fenceProcess({ pid, host, procStart }).then((r) => this.#dispatch({ type: 'fenced', ok: r.ok, detail: r.detail }));
        return;
      }
      case 'notify':
        // Stamped with the step that decided it (see StepLoop.decidedAt).
        this.#pending.push({ notification: effect.notification, at: this.#loop.decidedAt });
        if (effect.notification.type === 'roleChanged') {
          const change = this.#roleChange(effect.notification, this.#loop.decidedAt);
          this.pushChange(change);
        }
        this.#scheduleFlush();
        // News may mean this node is at rest again: rehearsals waiting for that look again.
        if (this.#rehearsalWait?.onNews === true) this.#rehearsalWait.wake();
        return;
      case 'log':
        this.#logger[effect.level](effect.message);
        return;
      case 'started':
        this.#started?.resolve();
        return;
      case 'startFailed': {
        const code =
          effect.reason === 'in-use'
            ? 'ERR_FAILOVER_ENDPOINT_IN_USE'
            : effect.reason === 'epoch-exhausted'
              ? 'ERR_FAILOVER_EPOCH_EXHAUSTED'
              : 'ERR_FAILOVER_TRANSPORT';
        const message =
          effect.reason === 'in-use'
            ? `cannot start as primary: ${this.options.endpoint.address} is held by another process`
            : effect.reason === 'epoch-exhausted'
              ? `cannot start as primary: ${effect.detail} (state file ${this.#stateFile.path}); to reset the epoch, stop every node and delete every node's state file (README, "Resetting the epoch")`
              : `cannot start: ${effect.detail}`;
        this.#started?.reject(new FailoverError(code, message));
        return;
      }
      case 'close':
        // The state file's background flush too: nothing of this watcher runs after `closed`.
        void this.#serial(() => this.#transport.close().finally(() => this.#stateFile.settle())).then(
          () => this.#dispatch({ type: 'closed' }),
          (error: unknown) => {
            this.#logger.error(`closing failed: ${String(error)}`);
            this.#dispatch({ type: 'closed' });
          },
        );
        return;
    }
  }

  #promoteSettled(term: number, error: unknown): void {
    // A resolved onPromote's signal stays live for the whole term: it aborts when the term ends
    // (callDemote), as the election contract has it.
    if (error !== undefined) {
      this.#signals.abort(term, new FailoverError('ERR_FAILOVER_LIFECYCLE', 'onPromote failed'));
    }
    if (error !== undefined) this.#logger.warn(`onPromote failed: ${error instanceof Error ? error.message : String(error)}`);
    this.#dispatch({
      type: 'promoteSettled',
      term,
      ok: error === undefined,
      detail: error === undefined ? undefined : error instanceof Error ? error.message : String(error),
    });
  }

  /** When shutdown waits too long on onPromote/onDemote, carry on without them. */
  #forceSettle(): void {
    this.#forceTimer = undefined;
    const s = this.#loop.state;
    if (s.phase === 'stopped') return;
    this.#logger.warn(`shutdown: callbacks did not settle within ${this.options.shutdownTimeout} ms; handing over anyway`);
    if (s.promoteOutstanding) this.#dispatch({ type: 'promoteSettled', term: s.term, ok: false, detail: 'shutdown timeout' });
    if (this.#loop.state.demoteOutstanding) this.#dispatch({ type: 'demoteSettled', term: this.#loop.state.term });
  }

  #finishStop(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#loop.stop();
    if (this.#forceTimer !== undefined) this.#clock.clearTimer(this.#forceTimer);
    this.#forceTimer = undefined;
    this.#signals.abortAll();
    this.endChangeStreams();
    this.#started?.reject(new FailoverError('ERR_FAILOVER_LIFECYCLE', 'the watcher was shut down before it started'));
    this.#resolveStopped();
  }

  /**
   * Resolves shutdown()'s promise, if there is one by then, after the notifications already
   * queued (the change to `stopped` among them) have been delivered: they were scheduled first,
   * so this runs after them. And after the rehearsal under way, if any, so that nothing of this
   * watcher runs once it resolved.
   */
  #resolveStopped(): void {
    const rehearsing = this.#rehearsing ?? Promise.resolve();
    setImmediate(() => void rehearsing.then(() => this.#stopped?.resolve()));
  }

  #roleChange(n: Extract<Notification, { type: 'roleChanged' }>, at: number): RoleChange {
    return { from: n.from, to: n.to, epoch: n.epoch, reason: n.reason, at, instanceId: this.options.instanceId };
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const batch = this.#pending;
      this.#pending = [];
      for (const { notification, at } of batch) this.#deliver(notification, at);
    });
  }

  #deliver(n: Notification, at: number): void {
    switch (n.type) {
      case 'roleChanged':
        this.emitSafely('roleChanged', this.#roleChange(n, at));
        return;
      case 'primaryChanged':
        this.emitSafely('primaryChanged', { instanceId: n.instanceId, epoch: n.epoch, pid: n.pid, host: n.host, at, metadata: n.metadata ?? NO_METADATA });
        return;
      case 'primaryMetadataChanged':
        this.emitSafely('primaryMetadataChanged', { instanceId: n.instanceId, epoch: n.epoch, metadata: n.metadata ?? NO_METADATA, at });
        return;
      case 'primaryLost':
        this.emitSafely('primaryLost', { instanceId: n.instanceId, epoch: n.epoch, cause: n.cause, willPromote: n.willPromote, reason: n.reason, at });
        return;
      case 'endpointStolen': {
        const endpoint = this.options.endpoint;
        const path = endpoint.kind === 'ipc-path' ? endpoint.path : endpoint.address;
        this.emitSafely('endpointStolen', { endpoint: endpoint.address, path, found: n.found, detail: n.detail, at });
        return;
      }
      case 'promotionFailed':
        this.emitSafely('promotionFailed', { epoch: n.epoch, reason: n.reason, error: n.detail, retryInMs: n.retryInMs, at });
        return;
      case 'epochExhausted':
        this.emitSafely('epochExhausted', { code: 'ERR_FAILOVER_EPOCH_EXHAUSTED', epoch: n.epoch, reason: n.reason, error: n.detail, at });
        return;
    }
  }

  protected override onListenerError(event: string, error: unknown): void {
    this.#logger.warn(`a ${event} listener threw: ${error instanceof Error ? error.message : String(error)}`);
  }
}
