/**
 * The heartbeat watcher's decisions, as a pure state machine.
 *
 * `step(state, input, env) -> { state, effects }`. It imports nothing from Node, reads no clock
 * and starts no timer: time (`env.now`, local monotonic milliseconds) and randomness
 * (`env.random`) come in with every input, and everything it wants done (bind the endpoint,
 * publish, call `onPromote`, wake up at a time) goes out as effects for the driver to run. The
 * driver feeds the outcome of each asynchronous effect back as another input.
 *
 * What it guarantees (given a transport whose bind is exclusive, see docs/TRANSPORT.md and docs/GUARANTEES.md):
 * - a node becomes primary only after its own bind of the endpoint succeeded and its epoch was
 *   written; it announces itself on the wire (`instance.promoted`, heartbeats) before `onPromote`
 *   runs, and reports the role (`roleChanged`, `role`) only after `onPromote` resolved;
 * - epochs it takes are larger than every epoch it has seen on the wire or in the state file, and
 *   never larger than {@link MAX_EPOCH}: at that ceiling it refuses to promote (no bind, no
 *   announcement), reports it (`epochExhausted`) and keeps following whoever holds the endpoint;
 * - a primary that sees a higher epoch steps down at once;
 * - `onDemote` is called exactly once for every `onPromote` that resolved, after it resolved;
 * - a secondary promotes on `instance.shutdown` at once, on silence only after
 *   `heartbeatTimeout`, and never while it is disabled; after a lost race, a disabled period or a
 *   failed `onPromote` it keeps watching and tries again when the primary is lost again;
 * - after its own stall (a wake-up much later than planned) it drains already-queued messages
 *   before it judges silence;
 * - an observer (a node whose endpoint is not an address of its own host) never binds and never
 *   promotes;
 * - `primaryLost.willPromote` is true only when this node is about to try to take over an
 *   endpoint its primary gave up or lost (`shutdown`, `disconnect`); a silence is only a
 *   suspicion (`reason: 'suspected'`): the node takes over only if a bind later succeeds;
 * - a primary told that its filesystem socket file was replaced (`endpointStolen`) keeps its role
 *   and reports it (log, notification, a field in its heartbeats) until it gives the endpoint up.
 *
 * @module
 */
import type { Topic, WireMessage } from '../protocol/messages.js';
import { sameMetadata, type Metadata } from '../protocol/metadata.js';
import { StepBuilder, type StepEnv } from './step-builder.js';

/** The public role of a watcher. */
export type Role = 'starting' | 'secondary' | 'primary' | 'stopped';

/** How a watcher was asked to start. */
export type InitialRole = 'primary' | 'secondary' | 'auto';

/** Why a node became primary. */
export type PromoteReason = 'startup' | 'shutdown' | 'silence' | 'disconnect';

/** Why a node stopped being primary. */
export type DemoteReason = 'higher-epoch' | 'shutdown' | 'stepdown';

/** Why a role changed. */
export type RoleChangeReason = PromoteReason | DemoteReason;

/**
 * What `primaryLost.willPromote` rests on: `taking-over` (true: the primary gave the endpoint up
 * or lost it, and this node tries to bind it now), `suspected` (false: the primary is only
 * silent and may still hold the endpoint; this node takes over only if a later bind succeeds),
 * `disabled` (false: failover is off), `observer` (false: the endpoint is not an address of this
 * host, so this node never binds it), `epoch-exhausted` (false: no valid epoch is left, see
 * {@link MAX_EPOCH}).
 */
export type PrimaryLostReason = 'taking-over' | 'suspected' | 'disabled' | 'observer' | 'epoch-exhausted';

/**
 * What a primary found at the path of its filesystem socket instead of the file it bound:
 * nothing (`gone`) or another file (`replaced`, most likely another process's socket).
 */
export type EndpointTheft = 'gone' | 'replaced';

/** Internal lifecycle phase; finer than {@link Role}. */
export type Phase =
  | 'idle'
  | 'binding'
  | 'secondary'
  | 'acquiring'
  | 'claiming'
  | 'promoting'
  | 'primary'
  | 'verifying'
  | 'stopping'
  | 'stopped';

/** What a node knows about the primary it follows. */
export interface PrimaryView {
  readonly instanceId: string;
  readonly epoch: number;
  readonly pid: number;
  readonly host: string;
  readonly seq: number;
  /** Local monotonic time of the last message from it. */
  readonly lastSeenAt: number;
  /** Local wall-clock time of the last heartbeat from it (for display only). */
  readonly lastSeenWallAt: number;
  /** Its announced priority, if any. */
  readonly priority: number | undefined;
  /** Its announced process start time (Linux clock ticks since boot), for fencing. */
  readonly procStart: number | undefined;
  /** Its announced application metadata (PROTOCOL.md section 11); undefined when none. */
  readonly metadata?: Metadata | undefined;
}

/** A node connected to this primary (learnt from its presence subscription). */
export interface MemberView {
  readonly priority: number;
  /** Local monotonic time it joined. */
  readonly since: number;
  /** Open subscriptions (a reconnect may overlap the old connection's goodbye). */
  readonly count: number;
}

/** A primary this node considers lost, and since when. */
export interface Loss {
  readonly cause: PromoteReason;
  readonly since: number;
  readonly instanceId: string | undefined;
  readonly epoch: number | undefined;
  /**
   * Set when this loss is this node's own failed promotion: its retry's backoff ends then, and
   * the disconnect its own release causes (one within `OWN_DISCONNECT_WINDOW` of `since`) does
   * not bring the retry forward.
   */
  readonly backoffUntil?: number;
  /**
   * Set once this node refused to take over for this loss because no valid epoch is left
   * ({@link MAX_EPOCH}): reported once, not tried again.
   */
  readonly refused?: boolean;
}

/** Fixed parameters of a machine. Durations in ms. */
export interface MachineConfig {
  readonly instanceId: string;
  readonly initialRole: InitialRole;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  /** Base delay before retrying after a failed `onPromote`; doubles per failure, jittered. */
  readonly retryInterval: number;
  /** Cap of that backoff. */
  readonly maxRetryInterval: number;
  /** After the primary announced shutdown, first bind retry delay (the old primary may still be closing). */
  readonly fastRetryInterval: number;
  /** This node's priority; lower is preferred as successor. */
  readonly priority: number;
  /** Delay per better-ranked live secondary before this one tries to take over. */
  readonly priorityStagger: number;
  /** A primary hands over to a live secondary of better priority after `preemptDelay`. */
  readonly preempt: boolean;
  readonly preemptDelay: number;
  /** How long a disconnect keeps a secondary probing the endpoint with binds. */
  readonly probeWindow: number;
  /**
   * Opt-in fencing: a primary silent for heartbeatTimeout that still holds the endpoint and
   * fails a direct liveness probe is terminated by pid (same host, same process only).
   */
  readonly fencing: boolean;
  /** How long a direct liveness probe waits for the primary's answer. */
  readonly livenessProbeTimeout: number;
  /** A wake-up later than planned by more than this means this process itself stalled. */
  readonly stallThreshold: number;
  /** After a stall, how long to let queued messages drain before judging silence. */
  readonly drainDelay: number;
  /**
   * The transport can stop this node's subscriber reading heartbeats (`hearOwnHeartbeats`): a
   * holder then does so once its own came back on the subscriber's current connection.
   */
  readonly quietsOwnHeartbeats: boolean;
}

/** Counters kept by the machine; exposed through `status()`. */
export interface MachineCounters {
  readonly heartbeatsSent: number;
  readonly heartbeatsSeen: number;
  readonly promotions: number;
  readonly demotions: number;
  readonly failedPromotions: number;
  readonly lostRaces: number;
  readonly stalls: number;
  /** Presence subscriptions of new nodes ignored because {@link MAX_PRESENCE_MEMBERS} were already connected. */
  readonly presenceDropped: number;
  /** Liveness probes not answered because one was answered less than {@link PROBE_ANSWER_GAP} ms before. */
  readonly probesIgnored: number;
  /**
   * Primaries followed whose epoch was lower than the highest epoch this node had seen (a
   * holder that restarted without the cluster's state file, or a peer that does not keep one).
   */
  readonly staleEpochFollows: number;
  /** Promotions refused because no valid epoch was left ({@link MAX_EPOCH}). */
  readonly epochRefusals: number;
  /** Welcome heartbeats sent to newly connected subscribers ({@link WELCOME_GAP}). */
  readonly welcomesSent: number;
  /** New subscribers greeted by a welcome already due (at most one per {@link WELCOME_GAP} ms). */
  readonly welcomesCoalesced: number;
}

/**
 * The highest epoch a node takes: 2^53 - 1, the largest integer every receiver accepts (a
 * double represents every integer up to it exactly; receivers drop larger values, see
 * docs/PROTOCOL.md 4.2). A node whose next epoch would exceed it does not promote.
 */
export const MAX_EPOCH = Number.MAX_SAFE_INTEGER;

/** True when no node that knows what this one knows can take a valid epoch any more. */
export function epochExhausted(s: Pick<MachineState, 'knownEpoch'>): boolean {
  return s.knownEpoch >= MAX_EPOCH;
}

/**
 * Most connected nodes a primary tracks (presence subscriptions). Beyond it, new ids are ignored
 * and counted (`presenceDropped`): thousands of fake ids cannot grow the table.
 */
export const MAX_PRESENCE_MEMBERS = 1024;

/**
 * A primary answers at most one liveness probe per this many ms: the answer is a heartbeat that
 * every subscriber receives, probers included, so a flood of probe subscriptions cannot turn
 * into a flood of heartbeats.
 */
export const PROBE_ANSWER_GAP = 10;

/**
 * A primary greets a newly connected subscriber with a heartbeat at once (its announcement went
 * out before the subscribers of the previous primary had reconnected), but sends at most one
 * such welcome per this many ms: one heartbeat reaches every subscriber, so the subscribers that
 * arrive within the gap share the next one, sent when the gap ends. A flood of (re)subscriptions
 * therefore costs at most one extra heartbeat per gap.
 */
export const WELCOME_GAP = 10;

/** The whole state. Treat as immutable. */
export interface MachineState {
  readonly config: MachineConfig;
  readonly phase: Phase;
  readonly role: Role;
  readonly enabled: boolean;
  /** Own epoch while claiming/promoting/primary; otherwise the highest epoch known. */
  readonly epoch: number;
  /** Highest epoch seen anywhere (wire, state file, own). */
  readonly knownEpoch: number;
  /** The epoch of the latest term this node claimed (handed to its onDemote, whatever it knows by then). */
  readonly termEpoch: number;
  /** Counter of promotion attempts; identifies one onPromote/onDemote pairing. */
  readonly term: number;
  /** The reason of the running claim/promotion. */
  readonly claimReason: PromoteReason | undefined;
  /** True while an onPromote call has not settled. */
  readonly promoteOutstanding: boolean;
  /** Term whose onPromote resolved and whose onDemote has not been called yet. */
  readonly promotedTerm: number | undefined;
  /** True while onDemote runs. */
  readonly demoteOutstanding: boolean;
  /** Whether this node currently holds (has bound) the endpoint. */
  readonly holdsEndpoint: boolean;
  readonly primary: PrimaryView | undefined;
  /** The secondaries the last primary listed in its heartbeat: `[instanceId, priority]`. */
  readonly lastMembers: ReadonlyArray<readonly [string, number]>;
  /** While holding the endpoint: who is connected. */
  readonly members: ReadonlyMap<string, MemberView>;
  /** A running direct liveness probe of a silent primary (fencing). */
  readonly liveness: { readonly nonce: number; readonly deadline: number } | undefined;
  /** Counter for probe nonces. */
  readonly probes: number;
  /** When this primary last answered a liveness probe. */
  readonly probeAnsweredAt: number | undefined;
  /** When this primary last sent a welcome heartbeat. */
  readonly welcomeSentAt: number | undefined;
  /** When the next welcome is due (subscribers arrived within {@link WELCOME_GAP} of the last). */
  readonly welcomeDueAt: number | undefined;
  /** When a preempting primary will hand over to a better-priority secondary. */
  readonly preemptAt: number | undefined;
  /**
   * The better-priority secondaries this node stepped down for (preemption), until the next
   * primary is known: if that is this node again, they go to {@link preemptDeclined}.
   */
  readonly preemptedFor: ReadonlySet<string> | undefined;
  /**
   * Secondaries handed over to by preemption that did not take over (failover disabled there,
   * say, which presence does not tell), so that this node took the role back: not preempted for
   * again while it stays primary and they stay connected, so the role does not go back and
   * forth. Forgotten when they leave, and when this node follows another primary.
   */
  readonly preemptDeclined: ReadonlySet<string>;
  /**
   * The endpoint is not an address of this host (set by `start`): this node only follows; it
   * never binds, so it never promotes and never fences.
   */
  readonly observer: boolean;
  /**
   * While holding a filesystem endpoint: its socket file is no longer the one this node bound
   * (what was found, and since when). Cleared when the node gives the endpoint up.
   */
  readonly endpointStolen: { readonly found: EndpointTheft; readonly detail: string; readonly since: number } | undefined;
  /** Monotonic time from which silence is measured. */
  readonly silenceFrom: number;
  /** The last gap between two messages of the followed primary, ms (0 until two were heard). */
  readonly beatGap: number;
  readonly loss: Loss | undefined;
  readonly attempts: number;
  readonly nextAttemptAt: number | undefined;
  /**
   * After the connection to the primary dropped: keep trying to bind until this time. A bind
   * that succeeds confirms the primary is gone (its process died and the kernel freed the
   * endpoint); EADDRINUSE all along means the disconnect was transient.
   */
  readonly probeUntil: number | undefined;
  /** No takeover attempt before this time (after a step-down). */
  readonly holdOffUntil: number | undefined;
  /** Do not judge silence before this time (draining after a stall). */
  readonly drainUntil: number | undefined;
  readonly nextHeartbeatAt: number | undefined;
  readonly lastSentAt: number | undefined;
  /** Last time this primary saw its own heartbeat come back through the endpoint. */
  readonly lastSelfSeenAt: number | undefined;
  /**
   * While holding the endpoint: its own subscriber's current connection has carried one of its
   * heartbeats back, so the subscriber stops reading them (`hearOwnHeartbeats` off) until that
   * connection changes or the node gives the endpoint up (PROTOCOL.md section 2.3). Every
   * heartbeat sent meanwhile goes through that same connection.
   */
  readonly selfHeard: boolean;
  /** The first own heartbeat (seq) whose return proves the subscriber's current connection. */
  readonly echoFrom: number;
  readonly seq: number;
  /** When the driver should call back with a `tick`. */
  readonly wakeAt: number | undefined;
  /** What the machine does once the pending callbacks settle while stopping or stepping down. */
  readonly pendingExit: 'shutdown' | 'stepdown' | undefined;
  readonly counters: MachineCounters;
}

/** Inputs the driver feeds in. */
export type Input =
  /** `observer`: the endpoint is not an address of this host (the driver found out at start). */
  | { readonly type: 'start'; readonly observer?: boolean }
  | { readonly type: 'tick' }
  | { readonly type: 'message'; readonly message: WireMessage; readonly wallNow: number }
  /**
   * The holder's own last heartbeat came back through the endpoint, recognised by its bytes (the
   * driver skips decoding what it encoded itself): the same as that heartbeat as a `message`.
   */
  | { readonly type: 'ownHeartbeat'; readonly seq: number }
  | { readonly type: 'bindResult'; readonly outcome: 'bound' | 'in-use' | 'failed'; readonly detail?: string }
  | { readonly type: 'epochLoaded'; readonly fileEpoch: number }
  | { readonly type: 'stateSaved'; readonly ok: boolean; readonly detail?: string }
  | { readonly type: 'promoteSettled'; readonly term: number; readonly ok: boolean; readonly detail?: string }
  | { readonly type: 'demoteSettled'; readonly term: number }
  | { readonly type: 'setEnabled'; readonly enabled: boolean }
  /** While holding the endpoint: a node connected (joined) or went. */
  | { readonly type: 'presence'; readonly joined: boolean; readonly instanceId: string; readonly priority: number }
  /** While holding the endpoint: someone asks whether this primary's event loop is alive. */
  | { readonly type: 'livenessProbed' }
  /** While holding the endpoint: a subscriber subscribed to the heartbeats (it has just connected). */
  | { readonly type: 'subscribed' }
  /**
   * The application changed this node's metadata: a primary announces it at once with an extra
   * heartbeat, rate-limited and counted like a welcome.
   */
  | { readonly type: 'metadataUpdated' }
  /** Outcome of a `fence` effect. */
  | { readonly type: 'fenced'; readonly ok: boolean; readonly detail: string }
  /** The subscribing socket lost its connection to the endpoint's holder. */
  | { readonly type: 'disconnected' }
  /** The subscribing socket connected to whoever binds the endpoint (again). */
  | { readonly type: 'connected' }
  /** While holding a filesystem endpoint: its socket file is no longer the one this node bound. */
  | { readonly type: 'endpointStolen'; readonly found: EndpointTheft; readonly detail: string }
  | { readonly type: 'stepDown' }
  | { readonly type: 'shutdown' }
  | { readonly type: 'closed' };

/** A notification the driver delivers to listeners (never blocking the machine). */
export type Notification =
  | {
      readonly type: 'roleChanged';
      readonly from: Role;
      readonly to: Role;
      readonly epoch: number;
      readonly reason: RoleChangeReason;
    }
  | {
      readonly type: 'primaryChanged';
      readonly instanceId: string;
      readonly epoch: number;
      readonly pid: number;
      readonly host: string;
      /** Its announced application metadata; undefined when none. */
      readonly metadata?: Metadata | undefined;
    }
  | {
      /** The primary followed (same instanceId and epoch) announced other metadata. */
      readonly type: 'primaryMetadataChanged';
      readonly instanceId: string;
      readonly epoch: number;
      readonly metadata: Metadata | undefined;
    }
  | {
      readonly type: 'primaryLost';
      readonly instanceId: string | undefined;
      readonly epoch: number | undefined;
      readonly cause: PromoteReason;
      readonly willPromote: boolean;
      readonly reason: PrimaryLostReason;
    }
  | { readonly type: 'endpointStolen'; readonly found: EndpointTheft; readonly detail: string }
  | {
      readonly type: 'promotionFailed';
      readonly epoch: number;
      readonly reason: PromoteReason;
      readonly detail: string;
      readonly retryInMs: number;
    }
  | {
      /** A promotion refused at the epoch ceiling ({@link MAX_EPOCH}); not retried. */
      readonly type: 'epochExhausted';
      /** The highest epoch known (2^53 - 1 or more). */
      readonly epoch: number;
      readonly reason: PromoteReason;
      readonly detail: string;
    };

/** Effects the driver runs, in order. */
export type Effect =
  /** Bind the endpoint (exclusive); answer with `bindResult`. */
  | { readonly type: 'bind' }
  /** Read the epoch from the state file; answer with `epochLoaded`. */
  | { readonly type: 'loadEpoch' }
  /** Write the state file atomically; answer with `stateSaved`. */
  | { readonly type: 'saveState'; readonly epoch: number; readonly primary: boolean }
  /** Publish a message on the endpoint this node holds. */
  | {
      readonly type: 'publish';
      readonly topic: Topic;
      readonly epoch: number;
      readonly seq: number;
      /** Connected secondaries, for heartbeats. */
      readonly members?: ReadonlyArray<readonly [string, number]>;
      /** On heartbeats, while the endpoint's socket file is not this node's (see `endpointStolen`). */
      readonly endpointStolen?: EndpointTheft;
    }
  /**
   * Publish `instance.shutdown` (when `farewellSeq` is set), make sure it left, and unbind.
   * Later socket effects wait for this one.
   */
  | { readonly type: 'release'; readonly epoch: number; readonly farewellSeq: number | undefined }
  /** Call onPromote; answer with `promoteSettled`. */
  | { readonly type: 'callPromote'; readonly term: number; readonly epoch: number; readonly reason: PromoteReason }
  /** Abort the signal handed to onPromote of `term`. */
  | { readonly type: 'abortPromote'; readonly term: number }
  /** Call onDemote; answer with `demoteSettled`. */
  | { readonly type: 'callDemote'; readonly term: number; readonly epoch: number; readonly reason: DemoteReason }
  /** Ask the endpoint's holder for an immediate heartbeat (subscribe `probe.<nonce>`). */
  | { readonly type: 'startLivenessProbe'; readonly nonce: number }
  /**
   * Whether this node's own subscriber reads heartbeats: off once it read its own back on its
   * current connection (a holder's only source of them there), on again before that connection
   * can lead anywhere else. The farewell and everything else still arrive while off.
   */
  | { readonly type: 'hearOwnHeartbeats'; readonly on: boolean }
  | { readonly type: 'endLivenessProbe'; readonly nonce: number }
  /**
   * Terminate the hung primary: only if `host` is this host and the process with `pid` started
   * at `procStart` (never another host's pid, never a reused pid). Answer with `fenced`.
   */
  | { readonly type: 'fence'; readonly instanceId: string; readonly pid: number; readonly host: string; readonly procStart: number }
  | { readonly type: 'notify'; readonly notification: Notification }
  | { readonly type: 'log'; readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly message: string }
  /** The start sequence is over: the watcher is secondary or primary. */
  | { readonly type: 'started' }
  /** The start failed; the driver rejects `start()` and closes. */
  | { readonly type: 'startFailed'; readonly reason: 'in-use' | 'bind-failed' | 'promote-failed' | 'epoch-exhausted'; readonly detail: string }
  /** Close every socket (after a `release` if one is needed); answer with `closed`. */
  | { readonly type: 'close' };

/** Time and randomness for one step. */
export type { StepEnv };

/** The outcome of one step. */
export interface StepResult {
  readonly state: MachineState;
  readonly effects: readonly Effect[];
}

const ZERO_COUNTERS: MachineCounters = Object.freeze({
  heartbeatsSent: 0,
  heartbeatsSeen: 0,
  promotions: 0,
  demotions: 0,
  failedPromotions: 0,
  lostRaces: 0,
  stalls: 0,
  presenceDropped: 0,
  probesIgnored: 0,
  staleEpochFollows: 0,
  epochRefusals: 0,
  welcomesSent: 0,
  welcomesCoalesced: 0,
});

/** The state of a machine that has not started. */
export function initialState(config: MachineConfig, enabled: boolean, knownEpoch = 0): MachineState {
  return {
    config,
    phase: 'idle',
    role: 'starting',
    enabled,
    epoch: knownEpoch,
    knownEpoch,
    termEpoch: 0,
    term: 0,
    claimReason: undefined,
    promoteOutstanding: false,
    promotedTerm: undefined,
    demoteOutstanding: false,
    holdsEndpoint: false,
    primary: undefined,
    lastMembers: [],
    members: new Map(),
    preemptAt: undefined,
    preemptedFor: undefined,
    preemptDeclined: new Set(),
    observer: false,
    endpointStolen: undefined,
    liveness: undefined,
    probes: 0,
    probeAnsweredAt: undefined,
    welcomeSentAt: undefined,
    welcomeDueAt: undefined,
    silenceFrom: 0,
    beatGap: 0,
    loss: undefined,
    attempts: 0,
    nextAttemptAt: undefined,
    probeUntil: undefined,
    holdOffUntil: undefined,
    drainUntil: undefined,
    nextHeartbeatAt: undefined,
    lastSentAt: undefined,
    lastSelfSeenAt: undefined,
    selfHeard: false,
    echoFrom: 0,
    seq: 0,
    wakeAt: undefined,
    pendingExit: undefined,
    counters: ZERO_COUNTERS,
  };
}

/** One transition. Pure: the same state, input and env always give the same result. */
export function step(state: MachineState, input: Input, env: StepEnv): StepResult {
  if (input.type === 'message') {
    const quick =
      input.message.instanceId === state.config.instanceId
        ? ownBeat(state, input.message.topic, env.now)
        : steadyBeat(state, input.message, input.wallNow, env.now);
    if (quick !== undefined) return quick;
  } else if (input.type === 'ownHeartbeat') {
    const quick = ownBeat(state, 'instance.heartbeat', env.now);
    if (quick !== undefined) return quick;
  } else if (input.type === 'tick') {
    const quick = steadyTick(state, env.now);
    if (quick !== undefined) return quick;
  }
  return fullStep(state, input, env);
}

const NO_EFFECTS: readonly Effect[] = Object.freeze([]);

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A copy of `s`, field by field. The shortcuts below build the next state with it rather than
 * with a spread: every state they build then has one object shape, which V8 copies and stores
 * into at the cost of plain property accesses, where a spread of these 41 fields takes its
 * generic path on each message (bench/README.md, "Cost at rest"). The type keeps the list
 * complete: a field added to {@link MachineState} and not here does not compile.
 */
function copyState(s: MachineState): Writable<MachineState> {
  return {
    config: s.config,
    phase: s.phase,
    role: s.role,
    enabled: s.enabled,
    epoch: s.epoch,
    knownEpoch: s.knownEpoch,
    termEpoch: s.termEpoch,
    term: s.term,
    claimReason: s.claimReason,
    promoteOutstanding: s.promoteOutstanding,
    promotedTerm: s.promotedTerm,
    demoteOutstanding: s.demoteOutstanding,
    holdsEndpoint: s.holdsEndpoint,
    primary: s.primary,
    lastMembers: s.lastMembers,
    members: s.members,
    liveness: s.liveness,
    probes: s.probes,
    probeAnsweredAt: s.probeAnsweredAt,
    welcomeSentAt: s.welcomeSentAt,
    welcomeDueAt: s.welcomeDueAt,
    preemptAt: s.preemptAt,
    preemptedFor: s.preemptedFor,
    preemptDeclined: s.preemptDeclined,
    observer: s.observer,
    endpointStolen: s.endpointStolen,
    silenceFrom: s.silenceFrom,
    beatGap: s.beatGap,
    loss: s.loss,
    attempts: s.attempts,
    nextAttemptAt: s.nextAttemptAt,
    probeUntil: s.probeUntil,
    holdOffUntil: s.holdOffUntil,
    drainUntil: s.drainUntil,
    nextHeartbeatAt: s.nextHeartbeatAt,
    lastSentAt: s.lastSentAt,
    lastSelfSeenAt: s.lastSelfSeenAt,
    selfHeard: s.selfHeard,
    echoFrom: s.echoFrom,
    seq: s.seq,
    wakeAt: s.wakeAt,
    pendingExit: s.pendingExit,
    counters: s.counters,
  };
}

/** `c` with one more `name`, copied as {@link copyState} copies a state. */
function counted(c: MachineCounters, name: keyof MachineCounters): MachineCounters {
  const next = copyCounters(c);
  next[name]++;
  return next;
}

/** {@link copyState} for the counters. */
function copyCounters(c: MachineCounters): Writable<MachineCounters> {
  return {
    heartbeatsSent: c.heartbeatsSent,
    heartbeatsSeen: c.heartbeatsSeen,
    promotions: c.promotions,
    demotions: c.demotions,
    failedPromotions: c.failedPromotions,
    lostRaces: c.lostRaces,
    stalls: c.stalls,
    presenceDropped: c.presenceDropped,
    probesIgnored: c.probesIgnored,
    staleEpochFollows: c.staleEpochFollows,
    epochRefusals: c.epochRefusals,
    welcomesSent: c.welcomesSent,
    welcomesCoalesced: c.welcomesCoalesced,
  };
}

/**
 * The step of a secondary at rest hearing the next heartbeat of the primary it follows, when
 * nothing but that is news: the same result as {@link fullStep}, built with one copy of the
 * state instead of one per change (this runs on every heartbeat, in a process that is otherwise
 * asleep: its cost is the watcher's cost at rest). Undefined whenever anything else would
 * happen, for the full step to handle. The property tests check the two agree on every message.
 */
function steadyBeat(s: MachineState, m: WireMessage, wallNow: number, now: number): StepResult | undefined {
  const prev = s.primary;
  if (
    s.phase !== 'secondary' ||
    s.holdsEndpoint ||
    m.topic !== 'instance.heartbeat' ||
    prev === undefined ||
    m.instanceId !== prev.instanceId ||
    m.epoch !== prev.epoch ||
    m.instanceId === s.config.instanceId ||
    m.epoch > s.knownEpoch ||
    s.epoch < s.knownEpoch ||
    m.metadataRejected !== undefined ||
    s.pendingExit !== undefined ||
    s.loss !== undefined ||
    s.liveness !== undefined ||
    s.preemptedFor !== undefined ||
    s.preemptDeclined.size > 0 ||
    s.members.size > 0 ||
    s.preemptAt !== undefined ||
    s.welcomeDueAt !== undefined ||
    s.endpointStolen !== undefined ||
    !sameMetadata(prev.metadata, m.metadata)
  ) {
    return undefined;
  }
  // `next` is this step's own object, not yet seen by anyone: completed in place.
  const next = copyState(s);
  next.counters = counted(s.counters, 'heartbeatsSeen');
  next.primary = heardPrimary(m, now, wallNow, m.metadata);
  if (m.members !== undefined) next.lastMembers = m.members;
  next.silenceFrom = now;
  next.beatGap = now - prev.lastSeenAt;
  next.drainUntil = undefined;
  next.probeUntil = undefined;
  next.wakeAt = computeWakeAt(next, now);
  return { state: next, effects: NO_EFFECTS };
}

/**
 * A holder reading its own heartbeat back through the endpoint when that turns nothing off (a
 * transport that cannot stop its subscriber reading them, or one already read on this
 * connection): only the time it was seen changes.
 */
function ownBeat(s: MachineState, topic: Topic, now: number): StepResult | undefined {
  if (!s.holdsEndpoint || (s.config.quietsOwnHeartbeats && !s.selfHeard) || topic !== 'instance.heartbeat' || s.phase === 'idle' || s.phase === 'stopped') return undefined;
  const own = copyState(s);
  own.lastSelfSeenAt = now;
  own.wakeAt = computeWakeAt(own, now);
  return { state: own, effects: NO_EFFECTS };
}

/**
 * A primary at rest whose heartbeat is due, on time: the tick sends it and plans the next one,
 * in one copy of the state. Anything else a primary's tick may do (a stall, a welcome or a
 * preemption due, a stolen socket file to report, a stall longer than `heartbeatTimeout` to
 * verify) takes the full step. The tests compare the two on every tick of a primary.
 */
function steadyTick(s: MachineState, now: number): StepResult | undefined {
  const due = s.nextHeartbeatAt;
  const planned = s.wakeAt;
  const last = s.lastSentAt;
  if (
    s.phase !== 'primary' ||
    !s.holdsEndpoint ||
    due === undefined ||
    now < due ||
    (planned !== undefined && now - planned > s.config.stallThreshold) ||
    last === undefined ||
    now - last > s.config.heartbeatTimeout ||
    s.welcomeDueAt !== undefined ||
    s.preemptAt !== undefined ||
    s.endpointStolen !== undefined
  ) {
    return undefined;
  }
  const next = copyState(s);
  next.seq = s.seq + 1;
  const effects = [beatEffect(s, next.seq)];
  next.counters = counted(s.counters, 'heartbeatsSent');
  next.lastSentAt = now;
  next.nextHeartbeatAt = nextBeatAt(due, now, s.config.heartbeatInterval);
  next.wakeAt = computeWakeAt(next, now);
  return { state: next, effects };
}

/** {@link step} without its shortcuts ({@link steadyBeat}, {@link ownBeat}, {@link steadyTick}); exported for the tests that compare them. */
export function fullStep(state: MachineState, input: Input, env: StepEnv): StepResult {
  const b = new Builder(state, env);
  switch (input.type) {
    case 'start':
      onStart(b, input.observer === true);
      break;
    case 'tick':
      onTick(b);
      break;
    case 'message':
      onMessage(b, input.message, input.wallNow);
      break;
    case 'ownHeartbeat':
      if (b.s.phase !== 'idle' && b.s.phase !== 'stopped' && b.s.holdsEndpoint) heardSelf(b, input.seq);
      break;
    case 'bindResult':
      onBindResult(b, input.outcome, input.detail ?? input.outcome);
      break;
    case 'epochLoaded':
      onEpochLoaded(b, input.fileEpoch);
      break;
    case 'stateSaved':
      onStateSaved(b, input.ok, input.detail ?? 'state file not written');
      break;
    case 'promoteSettled':
      onPromoteSettled(b, input.term, input.ok, input.detail ?? 'onPromote failed');
      break;
    case 'demoteSettled':
      onDemoteSettled(b, input.term);
      break;
    case 'setEnabled':
      onSetEnabled(b, input.enabled);
      break;
    case 'disconnected':
      connectionChanged(b);
      onDisconnected(b);
      break;
    case 'connected':
      connectionChanged(b);
      break;
    case 'endpointStolen':
      onEndpointStolen(b, input.found, input.detail);
      break;
    case 'presence':
      onPresence(b, input.joined, input.instanceId, input.priority);
      break;
    case 'livenessProbed':
      if (b.s.holdsEndpoint && b.s.phase === 'primary') {
        const last = b.s.probeAnsweredAt;
        if (last !== undefined && b.now - last < PROBE_ANSWER_GAP) {
          // The answer just sent reaches every subscriber, this prober included.
          b.count('probesIgnored');
          break;
        }
        // Answer from the event loop: proof that this primary is not hung.
        b.set({ probeAnsweredAt: b.now });
        b.emit(heartbeatEffect(b));
      }
      break;
    case 'subscribed':
    case 'metadataUpdated':
      onSubscribed(b);
      break;
    case 'fenced':
      onFenced(b, input.ok, input.detail);
      break;
    case 'stepDown':
      onStepDown(b);
      break;
    case 'shutdown':
      onShutdown(b);
      break;
    case 'closed':
      onClosed(b);
      break;
  }
  return b.finish();
}

// ---------------------------------------------------------------------------------------------

/** Accumulates the next state and the effects of one step. */
class Builder extends StepBuilder<MachineState, Effect> {
  notify(notification: Notification): void {
    this.effects.push({ type: 'notify', notification });
  }

  /** The one funnel for public role changes. */
  changeRole(to: Role, reason: RoleChangeReason): void {
    const from = this.s.role;
    if (from === to) return;
    this.set({ role: to });
    this.log('info', `role ${from} -> ${to} (${reason}, epoch ${this.s.epoch})`);
    this.notify({ type: 'roleChanged', from, to, epoch: this.s.epoch, reason });
  }

  nextSeq(): number {
    const seq = this.s.seq + 1;
    this.set({ seq });
    return seq;
  }

  finish(): StepResult {
    // Who is connected matters only to the holder of the endpoint.
    if (!this.s.holdsEndpoint && (this.s.members.size > 0 || this.s.preemptAt !== undefined || this.s.welcomeDueAt !== undefined)) {
      this.set({ members: new Map(), preemptAt: undefined, welcomeDueAt: undefined });
    }
    // A node that holds no term shows the highest epoch known (a primary that stepped down for
    // a higher epoch included); its own term's epoch stays in termEpoch for its onDemote.
    if (!this.s.holdsEndpoint && this.s.epoch < this.s.knownEpoch) this.set({ epoch: this.s.knownEpoch });
    // Nor does it keep a theft of its socket file: the next holder binds a file of its own.
    if (!this.s.holdsEndpoint && this.s.endpointStolen !== undefined) this.set({ endpointStolen: undefined });
    // Its subscriber reads every heartbeat again before it can connect to another holder (its
    // own socket's close, queued before this, ends the connection that carried its own back).
    if (!this.s.holdsEndpoint && this.s.selfHeard) hearOwnHeartbeats(this, true);
    this.set({ wakeAt: computeWakeAt(this.s, this.now) });
    return { state: this.s, effects: this.effects };
  }
}

function onStart(b: Builder, observer: boolean): void {
  if (b.s.phase !== 'idle') return;
  b.set({ observer });
  if (observer && b.s.config.initialRole === 'primary') {
    b.set({ phase: 'stopped', role: 'stopped' });
    b.emit({ type: 'startFailed', reason: 'bind-failed', detail: 'the endpoint is not an address of this host: this node can only observe it' });
    b.emit({ type: 'close' });
    return;
  }
  if (observer || b.s.config.initialRole === 'secondary') {
    becomeFollower(b);
    b.changeRole('secondary', 'startup');
    b.emit({ type: 'started' });
    return;
  }
  if (epochExhausted(b.s)) {
    endStartClaim(b, b.s, 'startup', 'epoch-exhausted', refuseAtCeiling(b, 'startup'), undefined);
    return;
  }
  b.set({ phase: 'binding', claimReason: 'startup' });
  b.emit({ type: 'bind' });
}

/**
 * This node cannot take a valid epoch (the highest known is {@link MAX_EPOCH} or more): log why
 * and how to reset, count it and notify. The caller does not bind, or gives back what it bound
 * without announcing anything. Returns the reason, for `startFailed`.
 */
function refuseAtCeiling(b: Builder, reason: PromoteReason): string {
  const known = b.s.knownEpoch;
  const detail =
    `no valid epoch left: the highest epoch known is ${known}, and the next would exceed 2^53 - 1 = ${MAX_EPOCH}, ` +
    'the largest epoch every node accepts (ERR_FAILOVER_EPOCH_EXHAUSTED)';
  b.count('epochRefusals');
  b.log(
    'error',
    `not promoting (${reason}): ${detail}; following whoever holds the endpoint. To reset the epoch, stop every node, ` +
      'delete the state file in the workdir of each, and start them again (fencing tokens then restart at 1: see the README, "Resetting the epoch")',
  );
  b.notify({ type: 'epochExhausted', epoch: known, reason, detail });
  return detail;
}

/** Enter the plain secondary phase, measuring silence from now. */
function becomeFollower(b: Builder): void {
  b.set({
    phase: 'secondary',
    silenceFrom: b.now,
    claimReason: undefined,
    nextHeartbeatAt: undefined,
    drainUntil: undefined,
  });
}

function onTick(b: Builder): void {
  const s = b.s;
  const planned = s.wakeAt;
  // A wake-up far later than planned means this process was stalled (SIGSTOP, a blocked event
  // loop, a suspended laptop). Messages that arrived meanwhile are still queued: let them drain
  // before judging the primary by a silence that may be our own.
  if (planned !== undefined && b.now - planned > s.config.stallThreshold) {
    b.count('stalls');
    b.log('warn', `this process stalled for ~${Math.round(b.now - planned)} ms`);
    if (s.phase === 'secondary' || s.phase === 'acquiring') {
      b.set({ drainUntil: b.now + s.config.drainDelay });
    }
  }

  switch (b.s.phase) {
    case 'secondary':
      judgeSilence(b);
      if (b.s.liveness !== undefined && b.now >= b.s.liveness.deadline) livenessProbeFailed(b);
      maybeAttempt(b);
      return;
    case 'claiming':
    case 'promoting':
    case 'primary':
    case 'stopping':
      heartbeatIfDue(b);
      if (b.s.welcomeDueAt !== undefined && b.now >= b.s.welcomeDueAt) sendWelcome(b);
      if (b.s.preemptAt !== undefined && b.now >= b.s.preemptAt) preemptIfStillBetter(b);
      return;
    default:
      return;
  }
}

function judgeSilence(b: Builder): void {
  const s = b.s;
  if (s.loss !== undefined) return;
  if (s.drainUntil !== undefined && b.now < s.drainUntil) return;
  if (b.now - s.silenceFrom < s.config.heartbeatTimeout) return;
  declareLoss(b, 'silence');
}

function declareLoss(b: Builder, cause: PromoteReason): void {
  const p = b.s.primary;
  const reason = lossOutlook(b.s, cause);
  const willPromote = reason === 'taking-over';
  const delay = successorDelay(b.s, p?.instanceId);
  b.set({ loss: { cause, since: b.now, instanceId: p?.instanceId, epoch: p?.epoch }, attempts: 0, nextAttemptAt: b.now + delay });
  const who = p === undefined ? 'no primary heard' : `primary ${p.instanceId} (epoch ${p.epoch})`;
  b.log(reason === 'taking-over' || reason === 'suspected' || reason === 'observer' ? 'info' : 'warn', `${who}: lost by ${cause}; ${LOSS_OUTLOOK[reason]}`);
  b.notify({
    type: 'primaryLost',
    instanceId: p?.instanceId,
    epoch: p?.epoch,
    cause,
    willPromote,
    reason,
  });
}

/**
 * Whether this node is about to take over a lost primary's endpoint, and why not. A silence is
 * only a suspicion: a hung primary (SIGSTOP, a blocked event loop) still holds the endpoint, and
 * only a bind that succeeds later says otherwise (the role change then tells).
 */
function lossOutlook(s: MachineState, cause: PromoteReason): PrimaryLostReason {
  if (s.observer) return 'observer';
  if (!s.enabled) return 'disabled';
  if (epochExhausted(s)) return 'epoch-exhausted';
  return cause === 'silence' ? 'suspected' : 'taking-over';
}

const LOSS_OUTLOOK: Readonly<Record<PrimaryLostReason, string>> = {
  'taking-over': 'taking over',
  suspected: 'suspected (it may still hold the endpoint): taking over only if a bind succeeds',
  disabled: 'failover disabled, not promoting',
  observer: 'this node observes only, not promoting',
  'epoch-exhausted': 'no valid epoch left, not promoting',
};

function maybeAttempt(b: Builder): void {
  const s = b.s;
  if (s.phase !== 'secondary' || !s.enabled || s.observer || callbacksOutstanding(s)) return;
  const probing = s.loss === undefined && s.probeUntil !== undefined && b.now < s.probeUntil;
  if (s.loss === undefined && !probing) return;
  if (s.holdOffUntil !== undefined && b.now < s.holdOffUntil) return;
  if (s.nextAttemptAt !== undefined && b.now < s.nextAttemptAt) return;
  if (epochExhausted(s)) {
    // No bind at all: a disconnect probe stops, and a loss is refused (and reported) once.
    if (s.loss === undefined) b.set({ probeUntil: undefined, nextAttemptAt: undefined });
    else if (s.loss.refused !== true) {
      refuseAtCeiling(b, s.loss.cause);
      b.set({ loss: { ...s.loss, refused: true }, nextAttemptAt: undefined });
    }
    return;
  }
  b.set({ phase: 'acquiring', claimReason: s.loss?.cause ?? 'disconnect', nextAttemptAt: undefined });
  b.emit({ type: 'bind' });
}

/**
 * An onPromote/onDemote of an earlier term still runs: do not start another term before it settled
 * (its onDemote must pair with it, and the calls must not overlap).
 */
function callbacksOutstanding(s: MachineState): boolean {
  return s.promoteOutstanding || s.demoteOutstanding;
}

/**
 * The holder's own heartbeat `seq` came back through the endpoint. The first on a connection is
 * the proof that the endpoint carries its heartbeats: from then on, its subscriber stops reading
 * them (a second delivery of each heartbeat, which costs a primary at rest about as much as
 * the first; bench/README.md, "Cost at rest"). Only a heartbeat sent after the last connection
 * event proves the connection it came on: one sent before may still be queued from the
 * previous connection (libzmq keeps the subscriber's queue across a reconnect), and the new one
 * may reach another holder. Not with a transport that cannot stop the subscriber reading them
 * (`quietsOwnHeartbeats` false): its own heartbeats keep coming back, and health keeps reading
 * their age.
 */
function heardSelf(b: Builder, seq: number): void {
  b.set({ lastSelfSeenAt: b.now });
  if (!b.s.selfHeard && b.s.config.quietsOwnHeartbeats && seq >= b.s.echoFrom) hearOwnHeartbeats(b, false);
}

/**
 * The subscriber's connection ended or a new one began: whoever it reaches now has not been
 * heard on it. It reads every heartbeat again, so a holder that finds another node's heartbeat
 * there (a stolen socket file, a moved address) steps down as before; only a heartbeat sent
 * from now on can prove the new connection. Every heartbeat sent so far went through the last
 * proven one: the age health reads goes on from the last of them.
 */
function connectionChanged(b: Builder): void {
  b.set({ echoFrom: b.s.seq + 1 });
  if (!b.s.selfHeard) return;
  b.set({ lastSelfSeenAt: ownHeartbeatSeenAt(b.s) });
  hearOwnHeartbeats(b, true);
}

/**
 * While holding the endpoint: when this node's freshest heartbeat known to have gone through it
 * was sent (monotonic ms): the last one its subscriber read back, or, while that connection
 * stays up and the subscriber no longer reads them, the last one sent since.
 */
export function ownHeartbeatSeenAt(s: MachineState): number | undefined {
  if (!s.holdsEndpoint) return undefined;
  if (s.selfHeard && s.lastSentAt !== undefined && (s.lastSelfSeenAt === undefined || s.lastSentAt > s.lastSelfSeenAt)) return s.lastSentAt;
  return s.lastSelfSeenAt;
}

function hearOwnHeartbeats(b: Builder, on: boolean): void {
  b.set({ selfHeard: !on });
  b.emit({ type: 'hearOwnHeartbeats', on });
}

/**
 * The connection to the primary dropped. When its process died, the kernel has freed the
 * endpoint too, so try to bind at once: success confirms the crash (and is the promotion);
 * EADDRINUSE means the primary still holds it, and a few quick retries tell a dying process from
 * a transient disconnect. Never a false failover: the bind only succeeds on a free endpoint.
 */
function onDisconnected(b: Builder): void {
  const s = b.s;
  if (s.phase !== 'secondary' || !s.enabled || s.observer) return;
  if (s.holdOffUntil !== undefined && b.now < s.holdOffUntil) return;
  if (s.loss !== undefined) {
    const stagger = successorDelay(s, s.loss.instanceId);
    // Right after this node's own failed promotion, not before its backoff: releasing the
    // endpoint dropped its own SUB's connection, which says nothing new. Later disconnects are
    // news (a node that took over since and crashed).
    const own = s.loss.backoffUntil !== undefined && b.now - s.loss.since < OWN_DISCONNECT_WINDOW;
    const backoff = own ? (s.loss.backoffUntil ?? 0) : 0;
    if (s.loss.cause === 'silence') {
      // Suspected by silence (a hung primary): its process may just have died. Try again now,
      // after this node's stagger.
      b.set({ nextAttemptAt: Math.max(b.now + stagger, backoff) });
    } else {
      // After a shutdown: the old primary has just closed its socket, so the endpoint is free.
      // Retry as soon as this node's stagger allows, instead of waiting out the lost race's
      // quick retry.
      b.set({ nextAttemptAt: Math.max(b.now, s.loss.since + stagger, backoff) });
    }
  } else {
    const delay = successorDelay(s, s.primary?.instanceId);
    b.set({ probeUntil: b.now + delay + s.config.probeWindow, attempts: 0, nextAttemptAt: b.now + delay });
  }
  maybeAttempt(b);
}

/**
 * How long after a failed promotion a disconnect is taken for the one its own release caused, ms:
 * the ZeroMQ transport closes at once when no farewell is due, or once the farewell came back
 * (within its farewellTimeout, 250 ms by default), and the SUB hears of it within milliseconds.
 * A disconnect after the window is taken as news: at worst one bind attempt comes before the
 * backoff ends, and fails.
 */
const OWN_DISCONNECT_WINDOW = 250;

function heartbeatIfDue(b: Builder): void {
  const s = b.s;
  if (!s.holdsEndpoint || s.nextHeartbeatAt === undefined || b.now < s.nextHeartbeatAt) return;
  if (s.phase === 'primary' && s.lastSentAt !== undefined && b.now - s.lastSentAt > s.config.heartbeatTimeout) {
    // Stalled longer than heartbeatTimeout: someone may have taken over meanwhile. Check the
    // state file for a higher epoch before acting as primary again.
    b.log('warn', `primary stalled for ${Math.round(b.now - s.lastSentAt)} ms; verifying epoch`);
    b.set({ phase: 'verifying', nextHeartbeatAt: undefined });
    b.emit({ type: 'loadEpoch' });
    return;
  }
  sendHeartbeat(b);
}

/** A heartbeat, with the theft of the socket file when there is one to report. */
function heartbeatEffect(b: Builder): Effect {
  return beatEffect(b.s, b.nextSeq());
}

/** The heartbeat `s` publishes as number `seq`. */
function beatEffect(s: MachineState, seq: number): Effect {
  const stolen = s.endpointStolen;
  const beat: Effect = { type: 'publish', topic: 'instance.heartbeat', epoch: s.epoch, seq, members: memberList(s) };
  return stolen === undefined ? beat : { ...beat, endpointStolen: stolen.found };
}

/** When the heartbeat after one due at `planned` and sent at `now` is due: a steady cadence, never catching up on beats missed during a stall. */
function nextBeatAt(planned: number, now: number, interval: number): number {
  return planned + interval > now ? planned + interval : now + interval;
}

/**
 * The socket file of the filesystem endpoint this node holds was unlinked, or replaced by
 * another process's: connections made from now on reach that file's owner, not this node. This
 * node keeps the role: it still holds the path lock, so no node that honours the lock can bind
 * the endpoint, its connected secondaries still hear it, and taking the path back would fight a
 * process that already ignores the lock. It reports the theft, loudly and once, and carries it
 * in every heartbeat until it gives the endpoint up.
 */
function onEndpointStolen(b: Builder, found: EndpointTheft, detail: string): void {
  const s = b.s;
  if (!s.holdsEndpoint || s.endpointStolen !== undefined) return;
  b.set({ endpointStolen: { found, detail, since: b.now } });
  b.log(
    'error',
    `the endpoint's socket file is not the one this node bound (${detail}): nodes that connect from now on reach ` +
      'whatever is there, not this primary; keeping the role (this node holds the path lock) and reporting it',
  );
  b.notify({ type: 'endpointStolen', found, detail });
}

function sendHeartbeat(b: Builder): void {
  b.emit(heartbeatEffect(b));
  b.count('heartbeatsSent');
  const next = nextBeatAt(b.s.nextHeartbeatAt ?? b.now, b.now, b.s.config.heartbeatInterval);
  // A welcome that was due is served by this heartbeat: every subscriber receives it.
  b.set({ lastSentAt: b.now, nextHeartbeatAt: next, welcomeDueAt: undefined });
}

/**
 * A subscriber subscribed to the heartbeats: it has just connected (a follower of the previous
 * primary reconnecting after a takeover, or a node starting). Greet it with a heartbeat at once,
 * so that it learns who holds the endpoint now instead of a heartbeatInterval later; at most one
 * welcome per {@link WELCOME_GAP} ms, the ones in between folded into the next.
 *
 * Only once this term is announced (`instance.promoted` and the first heartbeat went out, which
 * reach every subscriber already connected then); the transport reports a subscription only once
 * it is in force, so the welcome reaches the subscriber it answers.
 */
function onSubscribed(b: Builder): void {
  const s = b.s;
  if (!s.holdsEndpoint || (s.phase !== 'promoting' && s.phase !== 'primary')) return;
  if (s.welcomeDueAt !== undefined) {
    b.count('welcomesCoalesced');
    return;
  }
  if (s.welcomeSentAt !== undefined && b.now - s.welcomeSentAt < WELCOME_GAP) {
    b.count('welcomesCoalesced');
    b.set({ welcomeDueAt: s.welcomeSentAt + WELCOME_GAP });
    return;
  }
  sendWelcome(b);
}

/** An extra heartbeat for new subscribers; the regular cadence stays as it is. */
function sendWelcome(b: Builder): void {
  b.set({ welcomeSentAt: b.now, welcomeDueAt: undefined });
  b.count('welcomesSent');
  b.emit(heartbeatEffect(b));
}

function onMessage(b: Builder, m: WireMessage, wallNow: number): void {
  const s = b.s;
  if (s.phase === 'idle' || s.phase === 'stopped') return;
  if (m.instanceId === s.config.instanceId) {
    if (s.holdsEndpoint && m.topic === 'instance.heartbeat') heardSelf(b, m.seq);
    return;
  }
  if (m.epoch > s.knownEpoch) {
    // A secondary's `epoch` is the highest it knows; a holder's is its own term's.
    b.set(s.holdsEndpoint ? { knownEpoch: m.epoch } : { knownEpoch: m.epoch, epoch: m.epoch });
  }

  if (s.pendingExit !== undefined) return;
  if (s.holdsEndpoint) {
    // Another node publishes on the endpoint we hold: only possible if we lost it (a stall, a
    // stolen filesystem socket). A strictly higher epoch wins. While claiming there is no own
    // epoch yet (a queued message from the previous holder lands here): the epoch chosen next
    // exceeds it, since knownEpoch already took it.
    if (m.epoch > s.epoch && m.topic !== 'instance.shutdown' && s.phase !== 'claiming') {
      b.log('warn', `${m.instanceId} publishes epoch ${m.epoch} > own ${s.epoch}: stepping down`);
      loseRole(b, 'higher-epoch');
      follow(b, m, wallNow);
    }
    return;
  }

  if (s.phase !== 'secondary' && s.phase !== 'acquiring' && s.phase !== 'binding') return;

  if (m.topic === 'instance.shutdown') {
    const p = s.primary;
    // A shutdown from a node we do not follow, with an older epoch, is stale: ignore it.
    if (p !== undefined && p.instanceId !== m.instanceId && m.epoch < p.epoch) return;
    if (s.phase === 'binding') return;
    if (s.loss?.cause !== 'shutdown') {
      b.set({ loss: undefined });
      declareLoss(b, 'shutdown');
    }
    b.set({ primary: undefined });
    maybeAttempt(b);
    return;
  }

  // A heartbeat or promoted announcement: the sender holds the endpoint.
  b.count('heartbeatsSeen');
  follow(b, m, wallNow);
}

/** The primary as this node knows it after hearing `m` from it. */
function heardPrimary(m: WireMessage, now: number, wallNow: number, metadata: Metadata | undefined): PrimaryView {
  return {
    instanceId: m.instanceId,
    epoch: m.epoch,
    pid: m.pid,
    host: m.host,
    seq: m.seq,
    lastSeenAt: now,
    lastSeenWallAt: wallNow,
    priority: m.priority,
    procStart: m.procStart,
    metadata,
  };
}

/** Follow `m`'s sender as the primary. */
function follow(b: Builder, m: WireMessage, wallNow: number): void {
  const prev = b.s.primary;
  // A returning primary (heard again after a suspicion) is announced like a new one.
  const changed =
    prev === undefined || prev.instanceId !== m.instanceId || prev.epoch !== m.epoch || b.s.loss !== undefined;
  const samePrimary = prev !== undefined && prev.instanceId === m.instanceId && prev.epoch === m.epoch;
  // Metadata the receiver dropped (malformed, too large) is no news: keep what this primary
  // announced last in this term. A message without the field announces none.
  const metadata = m.metadataRejected !== undefined ? (samePrimary ? prev.metadata : undefined) : m.metadata;
  if (m.epoch < b.s.knownEpoch && (prev === undefined || prev.instanceId !== m.instanceId || prev.epoch !== m.epoch)) {
    // Whoever publishes on the endpoint holds it, so it is followed; but its epoch went
    // backwards (a holder without the cluster's state file?): fencing tokens may repeat.
    b.count('staleEpochFollows');
    b.log(
      'warn',
      `following ${m.instanceId} with epoch ${m.epoch}, lower than epoch ${b.s.knownEpoch} already seen: ` +
        'epochs went backwards (a holder that does not share the state file?); fencing tokens may repeat',
    );
  }
  b.set({
    primary: heardPrimary(m, b.now, wallNow, metadata),
    ...(m.members !== undefined ? { lastMembers: m.members } : {}),
    silenceFrom: b.now,
    beatGap: samePrimary ? b.now - prev.lastSeenAt : 0,
    drainUntil: undefined,
    probeUntil: undefined,
  });
  settlePreemption(b, m.instanceId);
  // Following another primary: by the time this node leads again, they may have changed.
  if (b.s.preemptDeclined.size > 0) b.set({ preemptDeclined: new Set() });
  if (b.s.liveness !== undefined) {
    b.emit({ type: 'endLivenessProbe', nonce: b.s.liveness.nonce });
    b.set({ liveness: undefined });
  }
  if (b.s.loss !== undefined) b.set({ loss: undefined, attempts: 0, nextAttemptAt: undefined });
  if (changed) {
    b.log('info', `following primary ${m.instanceId} (epoch ${m.epoch})`);
    b.notify({ type: 'primaryChanged', instanceId: m.instanceId, epoch: m.epoch, pid: m.pid, host: m.host, ...(metadata === undefined ? {} : { metadata }) });
  } else if (!sameMetadata(prev?.metadata, metadata)) {
    b.notify({ type: 'primaryMetadataChanged', instanceId: m.instanceId, epoch: m.epoch, metadata });
  }
}

function onBindResult(b: Builder, outcome: 'bound' | 'in-use' | 'failed', detail: string): void {
  const s = b.s;
  if (s.phase === 'binding') {
    if (outcome === 'bound') {
      b.set({ phase: 'claiming', holdsEndpoint: true });
      b.emit({ type: 'loadEpoch' });
      return;
    }
    if (s.config.initialRole === 'primary' || outcome === 'failed') {
      b.set({ phase: 'stopped', role: 'stopped' });
      b.emit({ type: 'startFailed', reason: outcome === 'in-use' ? 'in-use' : 'bind-failed', detail });
      b.emit({ type: 'close' });
      return;
    }
    // auto: someone holds the endpoint, so we follow it.
    becomeFollower(b);
    b.changeRole('secondary', 'startup');
    b.emit({ type: 'started' });
    return;
  }
  if (s.phase === 'acquiring') {
    if (outcome === 'bound') {
      if (s.loss === undefined) {
        // A disconnect probe found the endpoint free: the primary is gone.
        declareLoss(b, 'disconnect');
      }
      b.set({ phase: 'claiming', holdsEndpoint: true, probeUntil: undefined, claimReason: b.s.loss?.cause ?? 'disconnect' });
      b.emit({ type: 'loadEpoch' });
      return;
    }
    if (s.loss === undefined) {
      // Probing after a disconnect: still held. Retry quickly until the window closes.
      const delay = Math.min(s.config.fastRetryInterval * 2 ** s.attempts, s.config.heartbeatInterval);
      const more = s.probeUntil !== undefined && b.now + delay < s.probeUntil;
      b.set({
        phase: 'secondary',
        claimReason: undefined,
        attempts: more ? s.attempts + 1 : 0,
        nextAttemptAt: more ? b.now + delay : undefined,
        probeUntil: more ? s.probeUntil : undefined,
      });
      if (outcome === 'failed') b.log('warn', `bind failed: ${detail}`);
      return;
    }
    // Lost the race, or the old primary still holds the endpoint (closing, or hung).
    b.count('lostRaces');
    if (outcome === 'failed') b.log('warn', `bind failed: ${detail}`);
    const loss = s.loss;
    const fast = loss !== undefined && loss.cause !== 'silence' && b.now - loss.since < s.config.heartbeatTimeout;
    const delay = fast
      ? Math.min(s.config.fastRetryInterval * 2 ** s.attempts, s.config.heartbeatInterval)
      : s.config.heartbeatInterval;
    b.set({ phase: 'secondary', claimReason: undefined, attempts: s.attempts + 1, nextAttemptAt: b.now + delay });
    if (loss?.cause === 'silence' && s.config.fencing && s.liveness === undefined && outcome === 'in-use') {
      startLivenessProbe(b);
    }
    return;
  }
  // In 'stopping' a late answer is ignored: the driver closes whatever it bound.
}

function onEpochLoaded(b: Builder, fileEpoch: number): void {
  const s = b.s;
  if (s.phase === 'claiming') {
    const known = Math.max(s.knownEpoch, fileEpoch, s.epoch);
    if (known >= MAX_EPOCH) {
      refuseClaim(b, known);
      return;
    }
    const epoch = known + 1;
    b.set({ epoch, knownEpoch: epoch, termEpoch: epoch, term: s.term + 1 });
    if (epoch === MAX_EPOCH) {
      b.log('warn', `taking epoch ${epoch} = 2^53 - 1, the last valid epoch: no node can take over after this term until the epoch is reset (README, "Resetting the epoch")`);
    }
    b.emit({ type: 'saveState', epoch, primary: true });
    return;
  }
  if (s.phase === 'verifying') {
    if (fileEpoch > s.epoch) {
      b.set({ knownEpoch: Math.max(s.knownEpoch, fileEpoch) });
      b.log('warn', `state file holds epoch ${fileEpoch} > own ${s.epoch}: stepping down`);
      loseRole(b, 'higher-epoch');
      becomeFollower(b);
      return;
    }
    b.set({ phase: 'primary' });
    sendHeartbeat(b);
  }
}

/**
 * The endpoint is bound, but the state file (or the wire meanwhile) holds the last valid epoch:
 * give the endpoint back unannounced (nothing went on the wire) and do not try again.
 */
function refuseClaim(b: Builder, known: number): void {
  const s = b.s;
  const reason = s.claimReason ?? 'startup';
  b.set({ knownEpoch: known });
  b.emit({ type: 'release', epoch: s.epoch, farewellSeq: undefined });
  b.set({ holdsEndpoint: false, nextHeartbeatAt: undefined, claimReason: undefined, nextAttemptAt: undefined, primary: undefined });
  const detail = refuseAtCeiling(b, reason);
  const startLoss: Loss = { cause: 'startup', since: b.now, instanceId: undefined, epoch: undefined, refused: true };
  if (endStartClaim(b, s, reason, 'epoch-exhausted', detail, startLoss)) return;
  becomeFollower(b);
  const loss = s.loss ?? { cause: reason, since: b.now, instanceId: undefined, epoch: undefined };
  b.set({ loss: { ...loss, refused: true } });
}

function onStateSaved(b: Builder, ok: boolean, detail: string): void {
  const s = b.s;
  if (s.phase !== 'claiming') return;
  if (!ok) {
    failPromotion(b, `state file: ${detail}`);
    return;
  }
  const reason = s.claimReason ?? 'startup';
  settlePreemption(b, s.config.instanceId);
  b.set({ phase: 'promoting', promoteOutstanding: true, nextHeartbeatAt: b.now, primary: undefined, loss: undefined });
  b.emit({ type: 'publish', topic: 'instance.promoted', epoch: s.epoch, seq: b.nextSeq() });
  sendHeartbeat(b);
  b.emit({ type: 'callPromote', term: s.term, epoch: s.epoch, reason });
}

function onPromoteSettled(b: Builder, term: number, ok: boolean, detail: string): void {
  const s = b.s;
  if (term !== s.term || !s.promoteOutstanding) return;
  b.set({ promoteOutstanding: false });
  if (s.phase === 'promoting' && s.pendingExit === undefined) {
    if (ok) {
      b.set({ phase: 'primary', promotedTerm: term, attempts: 0, holdOffUntil: undefined });
      b.count('promotions');
      b.changeRole('primary', s.claimReason ?? 'startup');
      if (s.claimReason === 'startup') b.emit({ type: 'started' });
      schedulePreempt(b);
      return;
    }
    failPromotion(b, detail);
    return;
  }
  // The role was lost, or a stop or step-down began, while onPromote ran: pair a resolved
  // onPromote with its onDemote, then carry on leaving.
  if (ok) {
    b.set({ promotedTerm: term });
    callDemote(b, s.pendingExit ?? 'higher-epoch');
    return;
  }
  continueExit(b);
  maybeAttempt(b);
}

/** onPromote (or the state file) failed: give the endpoint back and retry later. */
function failPromotion(b: Builder, detail: string): void {
  const s = b.s;
  const reason = s.claimReason ?? 'startup';
  b.count('failedPromotions');
  const attempts = s.attempts + 1;
  const base = Math.min(s.config.retryInterval * 2 ** (attempts - 1), s.config.maxRetryInterval);
  const delay = Math.round(base * (0.5 + b.random()));
  b.log('warn', `promotion to epoch ${s.epoch} failed (${detail}); retrying in ${delay} ms`);
  // A farewell only for an announced term: an epoch the state file did not take must not reach
  // the wire (the next claimant reads the file and may take the same epoch).
  b.emit({ type: 'release', epoch: s.epoch, farewellSeq: s.phase === 'promoting' ? b.nextSeq() : undefined });
  b.set({
    holdsEndpoint: false,
    nextHeartbeatAt: undefined,
    claimReason: undefined,
    attempts,
    nextAttemptAt: b.now + delay,
    primary: undefined,
  });
  b.notify({ type: 'promotionFailed', epoch: s.epoch, reason, detail, retryInMs: delay });
  const startLoss: Loss = { cause: 'startup', since: b.now, instanceId: undefined, epoch: undefined, backoffUntil: b.now + delay };
  if (endStartClaim(b, s, reason, 'promote-failed', detail, startLoss)) return;
  becomeFollower(b);
  b.set({
    loss: { cause: reason, since: b.now, instanceId: undefined, epoch: undefined, backoffUntil: b.now + delay },
    nextAttemptAt: b.now + delay,
  });
}

/**
 * A claim of the start sequence given up (`s` is the state before): `primary` (take it or fail)
 * fails to start and closes; `auto` ends start() as a secondary, with `loss` when given. False
 * when the claim was not the start's.
 */
function endStartClaim(
  b: Builder,
  s: MachineState,
  reason: PromoteReason,
  failure: 'promote-failed' | 'epoch-exhausted',
  detail: string,
  loss: Loss | undefined,
): boolean {
  if (reason !== 'startup' || s.role !== 'starting') return false;
  if (s.config.initialRole === 'primary') {
    b.set({ phase: 'stopped', role: 'stopped' });
    b.emit({ type: 'startFailed', reason: failure, detail });
    b.emit({ type: 'close' });
    return true;
  }
  becomeFollower(b);
  if (loss !== undefined) b.set({ loss });
  b.changeRole('secondary', 'startup');
  b.emit({ type: 'started' });
  return true;
}

/** Stop acting as primary at once (a higher epoch exists). */
function loseRole(b: Builder, reason: DemoteReason): void {
  const s = b.s;
  b.count('demotions');
  if (s.promoteOutstanding) b.emit({ type: 'abortPromote', term: s.term });
  // Not a graceful handover: another node already leads, so no farewell.
  b.emit({ type: 'release', epoch: s.epoch, farewellSeq: undefined });
  b.set({ holdsEndpoint: false, nextHeartbeatAt: undefined, phase: 'secondary', claimReason: undefined });
  if (s.role === 'primary') b.changeRole('secondary', reason);
  else if (s.role === 'starting') {
    // Lost while the startup onPromote ran (a higher epoch on the wire), as after a failed
    // startup promotion: `primary` (take it or fail) fails to start and leaves as shutdown()
    // would, once that onPromote settled (with its onDemote if it resolved); `auto` ends start()
    // as a secondary that follows the other node.
    if (s.config.initialRole === 'primary') {
      b.emit({ type: 'startFailed', reason: 'in-use', detail: `a node with a higher epoch than ${s.epoch} holds the endpoint` });
      onShutdown(b);
      return;
    }
    b.changeRole('secondary', reason);
    b.emit({ type: 'started' });
  }
  if (s.promotedTerm !== undefined) callDemote(b, reason);
}

function callDemote(b: Builder, reason: DemoteReason): void {
  const term = b.s.promotedTerm;
  if (term === undefined) return;
  b.set({ promotedTerm: undefined, demoteOutstanding: true });
  b.emit({ type: 'callDemote', term, epoch: b.s.termEpoch, reason });
}

function onDemoteSettled(b: Builder, _term: number): void {
  if (!b.s.demoteOutstanding) return;
  b.set({ demoteOutstanding: false });
  if (b.s.pendingExit !== undefined) continueExit(b);
  else maybeAttempt(b);
}

function onSetEnabled(b: Builder, enabled: boolean): void {
  if (b.s.enabled === enabled) return;
  b.set({ enabled });
  b.log('info', `failover ${enabled ? 'enabled' : 'disabled'}`);
  if (enabled && b.s.loss !== undefined && b.s.phase === 'secondary') {
    b.set({ nextAttemptAt: b.now, holdOffUntil: undefined });
    maybeAttempt(b);
  }
}

function onStepDown(b: Builder): void {
  const s = b.s;
  if (!s.holdsEndpoint || s.pendingExit !== undefined) return;
  if (s.phase !== 'primary' && s.phase !== 'promoting') return;
  b.set({ pendingExit: 'stepdown' });
  beginExit(b, 'stepdown');
}

function onShutdown(b: Builder): void {
  const s = b.s;
  if (s.phase === 'stopped' || s.pendingExit === 'shutdown') return;
  b.set({ pendingExit: 'shutdown' });
  if (s.phase === 'idle') {
    b.set({ phase: 'stopped', role: 'stopped' });
    b.emit({ type: 'close' });
    return;
  }
  beginExit(b, 'shutdown');
}

/** Start leaving the primary role (or the cluster): abort onPromote, run onDemote, then continue. */
function beginExit(b: Builder, reason: DemoteReason): void {
  const s = b.s;
  if (s.promoteOutstanding) b.emit({ type: 'abortPromote', term: s.term });
  if (s.promotedTerm !== undefined) callDemote(b, reason);
  continueExit(b);
}

/**
 * Finish a stop or step-down once no onPromote/onDemote call is outstanding. Heartbeats go on
 * until then, so secondaries do not suspect a primary that is busy in onDemote.
 */
function continueExit(b: Builder): void {
  const s = b.s;
  if (s.promoteOutstanding || s.demoteOutstanding || s.pendingExit === undefined) return;
  // A farewell only after we announced ourselves (instance.promoted went out).
  const announced = s.phase === 'promoting' || s.phase === 'primary' || s.phase === 'verifying';
  if (s.pendingExit === 'stepdown') {
    b.emit({ type: 'release', epoch: s.epoch, farewellSeq: b.nextSeq() });
    if (s.role === 'primary') b.count('demotions');
    becomeFollower(b);
    b.set({
      holdsEndpoint: false,
      pendingExit: undefined,
      primary: undefined,
      // Stay out of the next election so another node takes over.
      holdOffUntil: b.now + s.config.heartbeatTimeout,
      loss: { cause: 'shutdown', since: b.now, instanceId: s.config.instanceId, epoch: s.epoch },
      attempts: 0,
      nextAttemptAt: b.now + s.config.heartbeatTimeout,
    });
    b.changeRole('secondary', 'stepdown');
    // Stepped down before the startup onPromote settled: the start sequence ends as secondary.
    if (s.role === 'starting') b.emit({ type: 'started' });
    return;
  }
  if (s.holdsEndpoint) {
    b.emit({ type: 'release', epoch: s.epoch, farewellSeq: announced ? b.nextSeq() : undefined });
  }
  b.set({ phase: 'stopping', holdsEndpoint: false, nextHeartbeatAt: undefined });
  // The endpoint is released: a successor may take over before the sockets closed.
  if (s.role === 'primary') {
    b.count('demotions');
    b.changeRole('stopped', 'shutdown');
  }
  b.emit({ type: 'close' });
}

function onClosed(b: Builder): void {
  if (b.s.phase === 'stopped' && b.s.role === 'stopped') return;
  if (b.s.role === 'primary') b.count('demotions');
  b.set({ phase: 'stopped', holdsEndpoint: false, nextHeartbeatAt: undefined, loss: undefined });
  b.changeRole('stopped', 'shutdown');
  if (b.s.pendingExit === 'shutdown') b.set({ pendingExit: undefined });
}

/** The earliest moment the machine wants to be woken. */
function computeWakeAt(s: MachineState, now: number): number | undefined {
  const candidates: number[] = [];
  switch (s.phase) {
    case 'secondary': {
      // A regular check every interval lets a stall be noticed: a check that runs later than
      // planned by more than stallThreshold means this process did not run, and what arrived
      // meanwhile drains before the silence is judged. Planned one interval after each message,
      // it woke the process once per beat at rest (a timer moved later still fires at its first
      // instant, then re-arms). While the primary is heard, one check `lead` before the silence
      // deadline does the same: a stall that ends past the deadline began before the next
      // message was due (within `span` of the last), so before that check whenever the deadline
      // is at least lead + span away; the check then runs at least `lead` late, more than the
      // threshold. Otherwise (a timeout under about two intervals, a primary beating slower
      // than this node's interval), the check stays one interval after each step.
      const lead = Math.max(s.config.heartbeatInterval, s.config.stallThreshold + 1);
      const span = Math.max(s.config.heartbeatInterval, s.beatGap);
      const precheck = s.silenceFrom + s.config.heartbeatTimeout - lead;
      const sparse = s.loss === undefined && s.config.heartbeatTimeout - lead >= span && now < precheck;
      candidates.push(sparse ? precheck : now + s.config.heartbeatInterval);
      if (s.loss === undefined) {
        // Silence is judged after heartbeatTimeout, and not before a drain ended (a wake-up in
        // the past would make the driver spin).
        candidates.push(Math.max(s.silenceFrom + s.config.heartbeatTimeout, s.drainUntil ?? 0));
        const probing = s.probeUntil !== undefined && now < s.probeUntil;
        if (probing && s.enabled && !callbacksOutstanding(s) && s.nextAttemptAt !== undefined) candidates.push(s.nextAttemptAt);
      } else if (s.enabled && !s.observer) {
        if (!callbacksOutstanding(s) && s.loss.refused !== true) candidates.push(Math.max(s.nextAttemptAt ?? now, s.holdOffUntil ?? now));
        if (s.liveness !== undefined) candidates.push(s.liveness.deadline);
      }
      break;
    }
    case 'claiming':
    case 'promoting':
    case 'primary':
    case 'stopping':
      if (s.holdsEndpoint && s.nextHeartbeatAt !== undefined) candidates.push(s.nextHeartbeatAt);
      if (s.holdsEndpoint && s.preemptAt !== undefined) candidates.push(s.preemptAt);
      if (s.holdsEndpoint && s.welcomeDueAt !== undefined) candidates.push(s.welcomeDueAt);
      break;
    default:
      break;
  }
  if (candidates.length === 0) return undefined;
  return Math.max(now, Math.min(...candidates));
}

// --- presence, successor choice and preemption -------------------------------------------------

/** `(priority, id)` of a is better than b's: lower priority first, then lower id. */
function better(aPriority: number, aId: string, bPriority: number, bId: string): boolean {
  return aPriority < bPriority || (aPriority === bPriority && aId < bId);
}

/**
 * How long this secondary waits before trying to take over: one `priorityStagger` per live
 * secondary that ranks better (the primary's last member list, without the lost primary). The
 * best-ranked node tries at once; the exclusive bind still decides if two try together.
 */
function successorDelay(s: MachineState, lostId: string | undefined): number {
  const self = s.config.instanceId;
  const own = s.config.priority;
  let rank = 0;
  for (const [id, priority] of s.lastMembers) {
    if (id === self || id === lostId) continue;
    if (better(priority, id, own, self)) rank++;
  }
  return rank * s.config.priorityStagger;
}

/**
 * The `members` of a heartbeat: one list per members map (a map is never changed, only
 * replaced), so a primary at rest hands the driver the same list every time, and the driver's
 * heartbeat template (codec.ts) knows at a glance that nothing changed.
 */
function memberList(s: MachineState): ReadonlyArray<readonly [string, number]> {
  let list = memberLists.get(s.members);
  if (list === undefined) {
    list = Object.freeze([...s.members].map(([id, m]) => Object.freeze([id, m.priority] as const)));
    memberLists.set(s.members, list);
  }
  return list;
}

const memberLists = new WeakMap<ReadonlyMap<string, MemberView>, ReadonlyArray<readonly [string, number]>>();

function onPresence(b: Builder, joined: boolean, instanceId: string, priority: number): void {
  const s = b.s;
  if (!s.holdsEndpoint || instanceId === s.config.instanceId) return;
  const current = s.members.get(instanceId);
  if (joined && current === undefined && s.members.size >= MAX_PRESENCE_MEMBERS) {
    if (s.counters.presenceDropped === 0) {
      b.log('warn', `more than ${MAX_PRESENCE_MEMBERS} nodes connected: ignoring (and counting) the presence of further ones`);
    }
    b.count('presenceDropped');
    return;
  }
  if (!joined && current === undefined) return;
  const members = new Map(s.members);
  if (joined) {
    members.set(instanceId, { priority, since: current?.since ?? b.now, count: (current?.count ?? 0) + 1 });
    if (current === undefined) b.log('debug', `secondary ${instanceId} (priority ${priority}) connected`);
  } else if (current !== undefined) {
    if (current.count <= 1) {
      members.delete(instanceId);
      b.log('debug', `secondary ${instanceId} went`);
      if (s.preemptDeclined.has(instanceId)) {
        const declined = new Set(s.preemptDeclined);
        declined.delete(instanceId);
        b.set({ preemptDeclined: declined });
      }
    } else {
      members.set(instanceId, { ...current, count: current.count - 1 });
    }
  }
  b.set({ members });
  schedulePreempt(b);
}

/** The connected secondaries of better priority than this node that preemption hands over to. */
function betterMembers(s: MachineState): string[] {
  const ids: string[] = [];
  for (const [id, m] of s.members) if (m.priority < s.config.priority && !s.preemptDeclined.has(id)) ids.push(id);
  return ids;
}

function hasBetterMember(s: MachineState): boolean {
  return betterMembers(s).length > 0;
}

/**
 * The next primary after a preemption hand-over is known (`primaryId`, this node's own id when
 * it claims the role back): if that is this node, none of those handed over to took over.
 */
function settlePreemption(b: Builder, primaryId: string): void {
  const wanted = b.s.preemptedFor;
  if (wanted === undefined) return;
  b.set({ preemptedFor: undefined });
  if (primaryId !== b.s.config.instanceId) return;
  const ids = [...wanted];
  b.log('warn', `handed over to ${ids.join(', ')} for preemption, but nobody took over (failover disabled there?); not preempting for ${ids.length === 1 ? 'it' : 'them'} again while connected`);
  b.set({ preemptDeclined: new Set([...b.s.preemptDeclined, ...ids]) });
}

function schedulePreempt(b: Builder): void {
  const s = b.s;
  if (!s.config.preempt || s.phase !== 'primary' || s.pendingExit !== undefined) {
    if (s.preemptAt !== undefined) b.set({ preemptAt: undefined });
    return;
  }
  if (!hasBetterMember(s)) {
    if (s.preemptAt !== undefined) b.set({ preemptAt: undefined });
    return;
  }
  if (s.preemptAt === undefined) {
    b.log('info', `a secondary of better priority is connected; handing over in ${s.config.preemptDelay} ms`);
    b.set({ preemptAt: b.now + s.config.preemptDelay });
  }
}

function preemptIfStillBetter(b: Builder): void {
  b.set({ preemptAt: undefined });
  const better = betterMembers(b.s);
  // Not while another exit (a stepDown, a shutdown) is under way: that one is not a preemption.
  if (b.s.phase !== 'primary' || b.s.pendingExit !== undefined || better.length === 0) return;
  b.log('info', 'preempted by a secondary of better priority: stepping down');
  b.set({ preemptedFor: new Set(better) });
  onStepDown(b);
}

// --- fencing (opt-in) -----------------------------------------------------------------------------

function startLivenessProbe(b: Builder): void {
  const nonce = b.s.probes + 1;
  b.set({ probes: nonce, liveness: { nonce, deadline: b.now + b.s.config.livenessProbeTimeout } });
  b.log('info', `primary silent and still holding the endpoint: probing its liveness (fencing on)`);
  b.emit({ type: 'startLivenessProbe', nonce });
}

/** The silent primary did not answer the direct probe either: terminate it, if it is provably it. */
function livenessProbeFailed(b: Builder): void {
  const s = b.s;
  const probe = s.liveness;
  if (probe === undefined) return;
  b.emit({ type: 'endLivenessProbe', nonce: probe.nonce });
  b.set({ liveness: undefined });
  const p = s.primary;
  if (s.loss === undefined || p === undefined || p.procStart === undefined) {
    b.log('warn', 'cannot fence the silent primary: it did not announce its process identity');
    return;
  }
  b.log('warn', `primary ${p.instanceId} (pid ${p.pid} on ${p.host}) is hung: fencing it`);
  b.emit({ type: 'fence', instanceId: p.instanceId, pid: p.pid, host: p.host, procStart: p.procStart });
}

function onFenced(b: Builder, ok: boolean, detail: string): void {
  b.log(ok ? 'warn' : 'info', ok ? `fenced the hung primary: ${detail}` : `did not fence: ${detail}`);
  if (ok && b.s.phase === 'secondary' && b.s.loss !== undefined) {
    // The kernel frees the endpoint as the process dies; take it at once.
    b.set({ nextAttemptAt: b.now });
    maybeAttempt(b);
  }
}
