/**
 * The Redis lease election's decisions, as a pure state machine.
 *
 * `step(state, input, env) -> { state, effects }`, like `heartbeat-machine.ts`: no Node imports,
 * no clock, no timers, no randomness of its own. Time (`env.now`, local monotonic ms) and
 * randomness (`env.random`) come in with every input; everything it wants done (run a lease
 * operation, call `onStart`, release the lease, wake up at a time) goes out as effects, and the
 * driver (`src/redis/cluster.ts`) feeds each outcome back as another input.
 *
 * What it guarantees, given a lease store whose operations are atomic (see
 * `transport/redis/lease-scripts.ts`):
 * - a node becomes primary only after the store granted it the lease, and with the revision
 *   (fencing token) the store handed out for that term, which is a safe integer (at most
 *   {@link MAX_REVISION}): when no valid revision is left the store refuses (`exhausted`), the
 *   node stays a follower and says why, and a grant with any other revision is given back unused;
 * - a primary steps down (aborts `onStart`'s signal, role `secondary`) as soon as a refresh finds
 *   the lease gone or held by someone else, and on its own once `maxDrift` has passed since the
 *   *send time* of its last successful acquire or refresh: the lease it holds in Redis lives at
 *   least `leaseTTL` from that instant, so with `maxDrift < leaseTTL` it stops acting before the
 *   lease can expire and another node take it (up to clock-rate differences, see docs/REDIS.md);
 * - `onStop` (the contract's `onDemote`) is called once for every `onStart` (`onPromote`) that
 *   did not fail, only after it settled, with the reason the term ended, and is abandoned (with
 *   a warning) after `stopTimeout`; a failed `onStart` hands the lease back at once, without it;
 * - a disabled node (`setEnabled`) never acquires; a disabled leader hands over like a step-down;
 * - a node never starts a new term while a callback of its previous term is outstanding;
 * - a voluntary exit (close, step-down, preemption, `onStart` rejection) keeps the lease until
 *   `onStop` finished (bounded by `handoverTimeout`), then releases it so a standby takes over at
 *   once; after a step-down or a rejected `onStart` the node stays out of elections for
 *   `failureHoldOff`;
 * - at most one lease operation is in flight at a time (their replies are matched by id);
 * - a release names the revision of the term it gives up (except when closing), so one that runs
 *   late, after Redis was paused, cannot end a later term of this node.
 *
 * @module
 */
import { StepBuilder, type StepEnv } from './step-builder.js';

/** The public role: the same four values as the ZeroMQ watcher. */
export type LeaseRole = 'starting' | 'secondary' | 'primary' | 'stopped';

/** Election strategy: `race` (whoever takes the free lease first) or `priority`. */
export type LeaseStrategy = 'race' | 'priority';

/** Finer than {@link LeaseRole}. */
export type LeasePhase = 'idle' | 'follower' | 'leader' | 'stopping' | 'stopped';

/** How the lease was found when this node took it. */
export type AcquiredFrom = 'vacant' | 'released' | 'expired' | 'self';

/** Why a role changed. */
export type LeaseRoleChangeReason =
  /** The first settled role (secondary). */
  | 'startup'
  /** Took a lease nobody had held (or whose history Redis lost). */
  | 'vacant'
  /** Took the lease right after its holder released it (graceful handover). */
  | 'handover'
  /** Took the lease after its holder's lease expired (crash, hang, outage). */
  | 'expired'
  /** Took again a lease Redis still had in this node's name (a refresh whose reply was lost). */
  | 'reacquired'
  /** A refresh found the lease gone or held by another node. */
  | 'lease-lost'
  /** No successful refresh for `maxDrift`: stepped down on its own. */
  | 'drift'
  /** A live node with a better priority exists (priority strategy). */
  | 'preempted'
  /** `onStart` threw or rejected. */
  | 'start-failed'
  /** `setEnabled(false)` while leading: handed the lease over, stays a follower that never runs. */
  | 'disabled'
  /** `stepDown()`: handed the lease over without leaving the election (the Watcher's name). */
  | 'stepdown'
  /** `close()`. */
  | 'shutdown';

/**
 * The largest revision a term takes: 2^53 - 1, the largest integer a double (JavaScript's
 * number, Lua 5.1's) holds exactly. Past it revisions would be rounded, and two terms could
 * share one.
 */
export const MAX_REVISION = Number.MAX_SAFE_INTEGER;

/** The leader as the last lease operation reported it. */
export interface LeaderView {
  readonly nodeId: string;
  readonly revision: number;
  readonly priority: number;
}

/** Fixed parameters of a machine. Durations in ms. */
export interface LeaseMachineConfig {
  readonly nodeId: string;
  readonly priority: number;
  readonly strategy: LeaseStrategy;
  /** Base interval between lease operations; each one is jittered by ±20%. */
  readonly tickInterval: number;
  readonly leaseTTL: number;
  /** A leader steps down when no acquire/refresh sent within this long succeeded. `< leaseTTL`. */
  readonly maxDrift: number;
  /** `onStop` is abandoned after this long. */
  readonly stopTimeout: number;
  /** A voluntary exit releases the lease after this long even if callbacks have not settled. */
  readonly handoverTimeout: number;
  /** After `onStart` failed or a step-down, stay out of elections (and tell others so) for this long. */
  readonly failureHoldOff: number;
  /** Whether the node may run for leader at start (`setEnabled` changes it). @default true */
  readonly enabled?: boolean;
}

/** Counters exposed through `status()`. */
export interface LeaseCounters {
  /** Lease operations sent (acquire, refresh, observe). */
  readonly operations: number;
  /** Lease operations that failed (Redis unreachable, timed out, script error). */
  readonly operationFailures: number;
  /** Ticks skipped because the previous operation had not answered yet. */
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
  /** Pub/sub notices acted upon. */
  readonly notices: number;
  /** Acquires refused because no valid revision was left (2^53 - 1 reached, or a counter that is not an integer). */
  readonly revisionRefusals: number;
}

/** A lease operation on its way. */
export interface PendingOp {
  readonly id: number;
  readonly kind: 'acquire' | 'refresh' | 'observe';
  /** Local monotonic time the operation was sent. */
  readonly sentAt: number;
}

/** A voluntary exit from the leader role in progress. */
export interface Exit {
  readonly reason: 'shutdown' | 'stepdown' | 'preempted' | 'start-failed' | 'disabled';
  /** Release the lease at this time at the latest. */
  readonly deadline: number;
}

/** The whole state. Treat as immutable. */
export interface LeaseMachineState {
  readonly config: LeaseMachineConfig;
  readonly phase: LeasePhase;
  readonly role: LeaseRole;
  /** Own term's revision while primary; otherwise the highest revision seen. */
  readonly revision: number;
  /** Highest revision seen anywhere. */
  readonly knownRevision: number;
  /** Local term counter: pairs one onStart with its onStop. */
  readonly term: number;
  /** The revision of the current or last term (handed to onStop). */
  readonly termRevision: number;
  /** Why the current or last term ended (handed to onStop as the demote reason). */
  readonly termEndReason: LeaseRoleChangeReason;
  /** Whether this node may run for leader (`setEnabled`). */
  readonly enabled: boolean;
  readonly leader: LeaderView | undefined;
  /** The other node's term last reported by a `primaryChanged` effect. */
  readonly followed: { readonly nodeId: string; readonly revision: number } | undefined;
  readonly op: PendingOp | undefined;
  readonly nextOpId: number;
  /** Run another operation as soon as the current one answers (a notice came meanwhile). */
  readonly opAgain: boolean;
  readonly nextTickAt: number | undefined;
  /** Leader: send time of the last successful acquire/refresh. */
  readonly leaseOkSentAt: number | undefined;
  /** Term whose onStart has not settled. */
  readonly startOutstanding: number | undefined;
  /** Term whose onStart was called and whose onStop has not been called yet. */
  readonly stopPending: number | undefined;
  /** Term whose onStop runs, and until when it may. */
  readonly stopOutstanding: { readonly term: number; readonly deadline: number } | undefined;
  readonly exit: Exit | undefined;
  /** Out of elections until this time (after a failed onStart or a step-down). */
  readonly holdOffUntil: number | undefined;
  /** Whether `started` went out (the first role settled). */
  readonly settled: boolean;
  /** Whether the last lease operation succeeded; undefined before the first answer. */
  readonly storeOk: boolean | undefined;
  readonly lastError: string | undefined;
  /** Local time of the last successful lease operation (any kind). */
  readonly lastOkAt: number | undefined;
  /** Another live registration uses this nodeId. */
  readonly duplicate: boolean;
  /**
   * Set while acquires are refused because no valid revision is left: what the revision counter
   * holds. Cleared by the next lease granted (after an operator reset the counter).
   */
  readonly revisionExhausted: { readonly counter: string } | undefined;
  readonly wakeAt: number | undefined;
  readonly counters: LeaseCounters;
}

/** What a lease operation answered. */
export type OpReply =
  | {
      readonly kind: 'acquire';
      readonly outcome: 'acquired';
      readonly revision: number;
      readonly from: AcquiredFrom;
      readonly duplicate: boolean;
    }
  | {
      readonly kind: 'acquire';
      /** `taken`: another node holds it; `deferred`: free, but a better live node should take it. */
      readonly outcome: 'taken' | 'deferred';
      readonly leader: LeaderView | undefined;
      readonly duplicate: boolean;
    }
  | {
      readonly kind: 'acquire';
      /**
       * Refused, nothing written: the next revision would exceed {@link MAX_REVISION}, or the
       * revision counter does not hold an integer.
       */
      readonly outcome: 'exhausted';
      /** What the revision counter holds. */
      readonly counter: string;
      readonly duplicate: boolean;
    }
  | {
      readonly kind: 'refresh';
      readonly outcome: 'refreshed';
      /** The best live eligible node with a strictly better priority, if any. */
      readonly betterNode: string | undefined;
      readonly duplicate: boolean;
    }
  | { readonly kind: 'refresh'; readonly outcome: 'lost'; readonly leader: LeaderView | undefined; readonly duplicate: boolean }
  | { readonly kind: 'observe'; readonly leader: LeaderView | undefined; readonly duplicate: boolean };

/** A pub/sub notice from another node (or this one). */
export interface Notice {
  readonly type: 'released' | 'elected' | 'preempt';
  readonly nodeId: string;
  readonly revision: number;
  readonly priority: number;
}

/** Inputs the driver feeds in. */
export type LeaseInput =
  | { readonly type: 'start' }
  | { readonly type: 'tick' }
  | { readonly type: 'opResult'; readonly id: number; readonly reply: OpReply }
  | { readonly type: 'opFailed'; readonly id: number; readonly detail: string }
  | { readonly type: 'releaseResult'; readonly released: boolean; readonly ok: boolean; readonly detail?: string }
  | { readonly type: 'notice'; readonly notice: Notice }
  /** The Redis connection is (again) ready: try at once instead of waiting for the next tick. */
  | { readonly type: 'connected' }
  | { readonly type: 'startSettled'; readonly term: number; readonly ok: boolean; readonly detail?: string }
  | { readonly type: 'stopSettled'; readonly term: number }
  /** Hand the lease over gracefully and stay a follower; no effect unless leader. */
  | { readonly type: 'stepDown' }
  /** Failover on or off: a disabled node never acquires; a disabled leader hands over. */
  | { readonly type: 'setEnabled'; readonly enabled: boolean }
  | { readonly type: 'shutdown' }
  | { readonly type: 'closed' };

/** A notification the driver delivers to listeners (never blocking the machine). */
export type LeaseNotification = {
  readonly type: 'roleChanged';
  readonly from: LeaseRole;
  readonly to: LeaseRole;
  readonly epoch: number;
  readonly reason: LeaseRoleChangeReason;
};

/** Effects the driver runs, in order. */
export type LeaseEffect =
  /** Run a lease operation; answer with `opResult` or `opFailed` carrying the same id. */
  | {
      readonly type: 'op';
      readonly id: number;
      readonly kind: 'acquire' | 'refresh' | 'observe';
      /** Whether others should count this node as a candidate (priority strategy). */
      readonly eligible: boolean;
      /** The highest revision this node has seen: a new term's revision is above it. */
      readonly knownRevision: number;
    }
  /** Release the lease if it is still ours (and deregister when closing); answer with `releaseResult`. */
  | {
      readonly type: 'release';
      readonly reason: Exclude<LeaseRoleChangeReason, 'startup' | 'vacant' | 'handover' | 'expired' | 'reacquired'> | 'revision-exhausted';
      readonly deregister: boolean;
      /** Whether anyone waits for the answer (closing); otherwise fire and forget. */
      readonly awaited: boolean;
      /** Whether the lease may be ours (leader, or an acquire in flight): a failure then matters. */
      readonly mayHold?: boolean;
      /**
       * The revision of the term given up: the store releases the lease only while it still holds
       * that term. Absent when closing (any lease of this node goes: it never leads again).
       * Without it, a release for an ended term that ran late (after Redis was paused) deleted
       * the next term this node had taken and announced meanwhile, and a standby took over while
       * this node was still primary.
       */
      readonly revision?: number;
    }
  | { readonly type: 'callStart'; readonly term: number; readonly revision: number; readonly reason: LeaseRoleChangeReason }
  | { readonly type: 'abortStart'; readonly term: number; readonly reason: LeaseRoleChangeReason }
  | { readonly type: 'callStop'; readonly term: number; readonly revision: number; readonly reason: LeaseRoleChangeReason }
  | { readonly type: 'notify'; readonly notification: LeaseNotification }
  /**
   * A follower sees another node hold the lease, or the same node for a new term (the Watcher's
   * `primaryChanged`): once per holder and revision, never for this node's own lease.
   */
  | { readonly type: 'primaryChanged'; readonly nodeId: string; readonly revision: number; readonly priority: number }
  /**
   * A follower considers the leader it followed gone: its release was announced (`released`) or
   * a lease operation found the lease free or another's (`expired`). `willPromote` when this node
   * runs for the lease now.
   */
  | {
      readonly type: 'primaryLost';
      readonly nodeId: string;
      readonly revision: number;
      readonly cause: 'released' | 'expired';
      readonly willPromote: boolean;
      readonly why: string;
    }
  | { readonly type: 'log'; readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly message: string }
  /** The first role settled (secondary or primary). */
  | { readonly type: 'started' }
  /** Close the Redis connections; answer with `closed`. */
  | { readonly type: 'close' };

/** Time and randomness for one step (the same for every machine). */
export type LeaseStepEnv = StepEnv;

export interface LeaseStepResult {
  readonly state: LeaseMachineState;
  readonly effects: readonly LeaseEffect[];
}

/** Jitter of every tick: ±20%. */
export const TICK_JITTER = 0.2;

const ZERO_COUNTERS: LeaseCounters = Object.freeze({
  operations: 0,
  operationFailures: 0,
  skippedTicks: 0,
  acquisitions: 0,
  stepDowns: 0,
  preemptions: 0,
  driftStepDowns: 0,
  leasesLost: 0,
  failedStarts: 0,
  abandonedStops: 0,
  notices: 0,
  revisionRefusals: 0,
});

/** The state of a machine that has not started. */
export function initialLeaseState(config: LeaseMachineConfig, knownRevision = 0): LeaseMachineState {
  return {
    config,
    phase: 'idle',
    role: 'starting',
    revision: knownRevision,
    knownRevision,
    term: 0,
    termRevision: 0,
    termEndReason: 'shutdown',
    enabled: config.enabled ?? true,
    leader: undefined,
    followed: undefined,
    op: undefined,
    nextOpId: 1,
    opAgain: false,
    nextTickAt: undefined,
    leaseOkSentAt: undefined,
    startOutstanding: undefined,
    stopPending: undefined,
    stopOutstanding: undefined,
    exit: undefined,
    holdOffUntil: undefined,
    settled: false,
    storeOk: undefined,
    lastError: undefined,
    lastOkAt: undefined,
    duplicate: false,
    revisionExhausted: undefined,
    wakeAt: undefined,
    counters: ZERO_COUNTERS,
  };
}

/** One transition. Pure: the same state, input and env always give the same result. */
export function leaseStep(state: LeaseMachineState, input: LeaseInput, env: LeaseStepEnv): LeaseStepResult {
  const b = new Builder(state, env);
  checkDeadlines(b);
  switch (input.type) {
    case 'start':
      onStart(b);
      break;
    case 'tick':
      onTick(b);
      break;
    case 'opResult':
      onOpResult(b, input.id, input.reply);
      break;
    case 'opFailed':
      onOpFailed(b, input.id, input.detail);
      break;
    case 'releaseResult':
      onReleaseResult(b, input.released, input.ok, input.detail);
      break;
    case 'notice':
      onNotice(b, input.notice);
      break;
    case 'connected':
      onConnected(b);
      break;
    case 'startSettled':
      onStartSettled(b, input.term, input.ok, input.detail);
      break;
    case 'stopSettled':
      onStopSettled(b, input.term);
      break;
    case 'stepDown':
      onStepDown(b);
      break;
    case 'setEnabled':
      onSetEnabled(b, input.enabled);
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

/** Whether the node may run for leader now. */
export function isEligible(s: LeaseMachineState, now: number): boolean {
  return (
    s.phase === 'follower' &&
    s.enabled &&
    s.startOutstanding === undefined &&
    s.stopPending === undefined &&
    s.stopOutstanding === undefined &&
    s.exit === undefined &&
    (s.holdOffUntil === undefined || now >= s.holdOffUntil)
  );
}

// ---------------------------------------------------------------------------------------------

class Builder extends StepBuilder<LeaseMachineState, LeaseEffect> {
  /** The one funnel for public role changes. */
  changeRole(to: LeaseRole, reason: LeaseRoleChangeReason): void {
    const from = this.s.role;
    if (from === to) return;
    this.set({ role: to });
    this.log('info', `role ${from} -> ${to} (${reason}, revision ${this.s.revision})`);
    this.effects.push({ type: 'notify', notification: { type: 'roleChanged', from, to, epoch: this.s.revision, reason } });
  }

  /**
   * Record a revision seen anywhere. One above {@link MAX_REVISION} (an older node's, a key set by
   * hand) counts as MAX_REVISION: a new term must exceed it, which no valid revision can.
   */
  see(seen: number): void {
    if (!(seen > 0)) return;
    const revision = Math.min(seen, MAX_REVISION);
    if (revision > this.s.knownRevision) this.set({ knownRevision: revision });
    if (this.s.phase !== 'leader' && this.s.knownRevision > this.s.revision) this.set({ revision: this.s.knownRevision });
  }

  finish(): LeaseStepResult {
    // Not leading: show the highest revision seen (the one of the node that took the lease
    // included); the ended term's stays in termRevision for its onStop.
    if (this.s.phase !== 'leader' && this.s.revision < this.s.knownRevision) this.set({ revision: this.s.knownRevision });
    this.set({ wakeAt: computeWakeAt(this.s) });
    return { state: this.s, effects: this.effects };
  }
}

/** The next tick time: `tickInterval` jittered by ±20%. */
function jittered(b: Builder): number {
  const base = b.s.config.tickInterval;
  return b.now + base * (1 - TICK_JITTER + 2 * TICK_JITTER * b.random());
}

function computeWakeAt(s: LeaseMachineState): number | undefined {
  if (s.phase === 'idle' || s.phase === 'stopped') return undefined;
  const times: number[] = [];
  if (s.nextTickAt !== undefined && s.phase !== 'stopping') times.push(s.nextTickAt);
  if (s.phase === 'leader' && s.leaseOkSentAt !== undefined) times.push(s.leaseOkSentAt + s.config.maxDrift);
  if (s.stopOutstanding !== undefined) times.push(s.stopOutstanding.deadline);
  if (s.exit !== undefined) times.push(s.exit.deadline);
  return times.length === 0 ? undefined : Math.min(...times);
}

/** Time-based decisions, checked before every input (a late timer or a stalled process included). */
function checkDeadlines(b: Builder): void {
  const s = b.s;
  if (s.phase === 'leader' && s.leaseOkSentAt !== undefined && b.now >= s.leaseOkSentAt + s.config.maxDrift) {
    b.count('driftStepDowns');
    b.log(
      'warn',
      `no successful lease refresh for ${Math.round(b.now - s.leaseOkSentAt)} ms (maxDrift ${s.config.maxDrift} ms): stepping down before the lease can expire`,
    );
    loseLeadership(b, 'drift', true);
  }
  const stop = b.s.stopOutstanding;
  if (stop !== undefined && b.now >= stop.deadline) {
    b.count('abandonedStops');
    b.log('warn', `onStop did not finish within ${b.s.config.stopTimeout} ms; abandoned`);
    b.set({ stopOutstanding: undefined });
    continueExit(b);
  }
  const exit = b.s.exit;
  if (exit !== undefined && b.now >= exit.deadline) {
    if (b.s.startOutstanding !== undefined) {
      b.log('warn', `onStart did not return within ${b.s.config.handoverTimeout} ms of its signal aborting; releasing the lease anyway`);
    }
    finishExit(b);
  }
  if (b.s.holdOffUntil !== undefined && b.now >= b.s.holdOffUntil) b.set({ holdOffUntil: undefined });
}

/** Waits for `connected` (or the first tick) before the first operation: no failure while connecting. */
function onStart(b: Builder): void {
  if (b.s.phase !== 'idle') return;
  b.set({ phase: 'follower', nextTickAt: jittered(b) });
}

function onTick(b: Builder): void {
  const s = b.s;
  if (s.phase !== 'follower' && s.phase !== 'leader') return;
  if (s.nextTickAt !== undefined && b.now < s.nextTickAt) return;
  runOp(b);
}

/** Sends the operation this phase calls for, unless one is in flight; schedules the next tick. */
function runOp(b: Builder): void {
  const s = b.s;
  b.set({ nextTickAt: jittered(b) });
  if (s.phase !== 'follower' && s.phase !== 'leader') return;
  if (s.op !== undefined) {
    b.count('skippedTicks');
    return;
  }
  const eligible = isEligible(s, b.now);
  const kind = s.phase === 'leader' ? 'refresh' : eligible ? 'acquire' : 'observe';
  const id = s.nextOpId;
  b.set({ op: { id, kind, sentAt: b.now }, nextOpId: id + 1, opAgain: false });
  b.count('operations');
  b.emit({ type: 'op', id, kind, eligible: eligible || s.phase === 'leader', knownRevision: s.knownRevision });
}

/** Run an operation now (a notice or a reconnect), or right after the one in flight. */
function runOpSoon(b: Builder): void {
  if (b.s.phase !== 'follower' && b.s.phase !== 'leader') return;
  if (b.s.op !== undefined) {
    b.set({ opAgain: true });
    return;
  }
  runOp(b);
}

function onOpResult(b: Builder, id: number, reply: OpReply): void {
  const op = b.s.op;
  if (op === undefined || op.id !== id) return;
  const again = b.s.opAgain;
  b.set({ op: undefined, opAgain: false, lastOkAt: b.now, lastError: undefined });
  if (b.s.storeOk === false) b.log('info', 'Redis answers again');
  b.set({ storeOk: true });
  if (reply.duplicate && !b.s.duplicate) {
    b.log('warn', `another live node registers with the same nodeId ${JSON.stringify(b.s.config.nodeId)}: give every node a unique nodeId`);
  }
  b.set({ duplicate: reply.duplicate });

  switch (reply.kind) {
    case 'acquire':
      if (reply.outcome === 'acquired') onAcquired(b, op, reply.revision, reply.from);
      else if (reply.outcome === 'exhausted') onExhausted(b, reply.counter);
      else onFollowing(b, reply.leader);
      break;
    case 'refresh':
      if (b.s.phase !== 'leader') break;
      if (reply.outcome === 'lost') {
        b.count('leasesLost');
        b.log('warn', `the lease is no longer ours${reply.leader ? ` (held by ${reply.leader.nodeId}, revision ${reply.leader.revision})` : ''}`);
        if (reply.leader !== undefined) b.see(reply.leader.revision);
        loseLeadership(b, 'lease-lost', false);
        b.set({ leader: reply.leader });
        follow(b, reply.leader);
        break;
      }
      if (b.s.leaseOkSentAt === undefined || op.sentAt > b.s.leaseOkSentAt) b.set({ leaseOkSentAt: op.sentAt });
      renewIfOld(b);
      if (reply.betterNode !== undefined && b.s.config.strategy === 'priority' && b.s.exit === undefined) {
        b.count('preemptions');
        b.log('info', `a live node with a better priority (${reply.betterNode}) exists: handing the lease over`);
        beginExit(b, 'preempted');
      }
      break;
    case 'observe':
      onFollowing(b, reply.leader);
      break;
  }
  settleStart(b);
  if (again || b.s.opAgain) runOpSoon(b);
}

function onFollowing(b: Builder, leader: LeaderView | undefined): void {
  if (leader !== undefined) b.see(leader.revision);
  const before = b.s.leader;
  if (b.s.phase === 'follower' && before !== undefined && before.nodeId !== b.s.config.nodeId && leader === undefined) {
    // The lease this node saw held is free, without a release notice: it expired.
    b.emit({ type: 'primaryLost', nodeId: before.nodeId, revision: before.revision, cause: 'expired', willPromote: false, why: b.s.enabled ? 'holding-off' : 'disabled' });
  }
  if (b.s.phase === 'follower') b.set({ leader });
  if (b.s.role === 'starting' && b.s.phase === 'follower') b.changeRole('secondary', 'startup');
  if (b.s.phase === 'follower') follow(b, leader);
}

/** Reports another node's term once (a lease read as free in between does not repeat it). */
function follow(b: Builder, leader: LeaderView | undefined): void {
  if (leader === undefined || leader.nodeId === b.s.config.nodeId) return;
  const f = b.s.followed;
  if (f !== undefined && f.nodeId === leader.nodeId && f.revision === leader.revision) return;
  b.set({ followed: { nodeId: leader.nodeId, revision: leader.revision } });
  b.emit({ type: 'primaryChanged', nodeId: leader.nodeId, revision: leader.revision, priority: leader.priority });
}

/**
 * The store refused a new term: no valid revision is left. Stay a follower (the lease is free:
 * nobody leads until an operator resets the counter), say why once, and keep asking every tick.
 */
function onExhausted(b: Builder, counter: string): void {
  b.count('revisionRefusals');
  if (b.s.revisionExhausted === undefined) {
    const known = b.s.knownRevision;
    b.log(
      'error',
      `not leading: no valid revision left (ERR_FAILOVER_EPOCH_EXHAUSTED): the revision counter holds ${JSON.stringify(counter)}` +
        `${known > 0 ? ` and this node has seen revision ${known}` : ''}, and a new term needs an integer revision above both, ` +
        `at most 2^53 - 1 = ${MAX_REVISION}. To reset, stop every node, delete the project's revision key ({project}:revision) ` +
        'and start them again; revisions then restart at 1 (docs/REDIS.md, "Resetting the revision")',
    );
  }
  b.set({ revisionExhausted: { counter } });
  onFollowing(b, undefined);
}

function onAcquired(b: Builder, op: PendingOp, revision: number, from: AcquiredFrom): void {
  const s = b.s;
  if (s.phase !== 'follower') {
    // Closing meanwhile: give back what we no longer want.
    if (s.phase === 'stopping') b.emit({ type: 'release', reason: 'shutdown', deregister: true, awaited: false });
    return;
  }
  if (!Number.isSafeInteger(revision) || revision <= 0) {
    // A store that granted a revision no node can trust (rounded, repeated): never lead with it.
    b.count('revisionRefusals');
    b.log('error', `the lease was granted with revision ${String(revision)}, not a valid revision (an integer from 1 to 2^53 - 1): giving it back unused (ERR_FAILOVER_EPOCH_EXHAUSTED)`);
    b.set({ revisionExhausted: { counter: String(revision) } });
    b.emit({ type: 'release', reason: 'revision-exhausted', deregister: false, awaited: false });
    onFollowing(b, undefined);
    return;
  }
  if (s.revisionExhausted !== undefined) {
    b.log('info', `the revision counter was reset: leading again with revision ${revision}`);
    b.set({ revisionExhausted: undefined });
  }
  b.see(revision);
  if (b.now >= op.sentAt + s.config.maxDrift) {
    // The answer came so late that the lease may be about to expire: do not act on it.
    b.log('warn', `the lease was granted ${Math.round(b.now - op.sentAt)} ms after asking (maxDrift ${s.config.maxDrift} ms); giving it back`);
    b.emit({ type: 'release', reason: 'drift', deregister: false, awaited: false, revision });
    onFollowing(b, undefined);
    return;
  }
  const previous = s.leader;
  if (from === 'expired' && previous !== undefined && previous.nodeId !== s.config.nodeId) {
    b.emit({ type: 'primaryLost', nodeId: previous.nodeId, revision: previous.revision, cause: 'expired', willPromote: true, why: 'taking-over' });
  }
  const term = s.term + 1;
  b.count('acquisitions');
  b.set({
    phase: 'leader',
    term,
    revision,
    termRevision: revision,
    leaseOkSentAt: op.sentAt,
    leader: { nodeId: s.config.nodeId, revision, priority: s.config.priority },
    startOutstanding: term,
    stopPending: term,
    holdOffUntil: undefined,
  });
  const reason: LeaseRoleChangeReason =
    from === 'released' ? 'handover' : from === 'expired' ? 'expired' : from === 'self' ? 'reacquired' : 'vacant';
  b.changeRole('primary', reason);
  b.emit({ type: 'callStart', term, revision, reason });
  renewIfOld(b);
}

/**
 * A grant or refresh that answered slowly (a backlog after Redis was paused) leaves little of
 * maxDrift: refresh again right away rather than at the next tick, or the leader would step
 * down for drift although Redis answers again.
 */
function renewIfOld(b: Builder): void {
  const s = b.s;
  if (s.phase !== 'leader' || s.leaseOkSentAt === undefined) return;
  if (b.now - s.leaseOkSentAt >= s.config.maxDrift / 2) b.set({ opAgain: true });
}

function settleStart(b: Builder): void {
  if (b.s.settled || (b.s.role !== 'secondary' && b.s.role !== 'primary')) return;
  b.set({ settled: true });
  b.emit({ type: 'started' });
}

function onOpFailed(b: Builder, id: number, detail: string): void {
  const op = b.s.op;
  if (op === undefined || op.id !== id) return;
  const again = b.s.opAgain;
  b.count('operationFailures');
  if (b.s.storeOk !== false) b.log('warn', `lease ${op.kind} failed: ${detail}`);
  else b.log('debug', `lease ${op.kind} failed: ${detail}`);
  b.set({ op: undefined, opAgain: false, storeOk: false, lastError: detail });
  if (again) runOpSoon(b);
}

/**
 * Stop acting as leader at once: the lease is gone (or may be, after `maxDrift`). The role
 * changes now; onStart's signal aborts; onStop follows when onStart has settled.
 */
function loseLeadership(b: Builder, reason: 'drift' | 'lease-lost', release: boolean): void {
  const s = b.s;
  if (s.phase !== 'leader') return;
  b.count('stepDowns');
  const exit = s.exit;
  b.set({ phase: 'follower', leaseOkSentAt: undefined, leader: undefined, exit: undefined });
  endTerm(b, reason);
  b.changeRole('secondary', reason);
  // Best effort: when Redis is merely slow, giving the lease back lets a standby in sooner. The
  // script only deletes a lease that is still this term's (fenced by its revision: the release
  // may run late, after this node took the lease again), and runs after anything sent before it.
  // Emitted after the role change and the abort: the term has ended before a standby can hear.
  if (release) b.emit({ type: 'release', reason, deregister: false, awaited: false, revision: s.termRevision });
  if (exit?.reason === 'shutdown') {
    // We were closing anyway: carry on with the exit, without a lease to release.
    b.set({ exit: { reason: 'shutdown', deadline: exit.deadline } });
    continueExit(b);
  } else if (exit?.reason === 'start-failed') {
    // That exit would have kept this node, whose onStart just failed, out of the next election:
    // so does losing the lease on the way. (A step-down that loses the lease ends as lost: it
    // was not this node's fault, and it stays eligible.)
    b.set({ holdOffUntil: b.now + s.config.failureHoldOff });
  }
}

/** Abort onStart's signal, or call onStop when onStart has already settled. */
function endTerm(b: Builder, reason: LeaseRoleChangeReason): void {
  if (b.s.stopPending !== undefined) b.set({ termEndReason: reason });
  const s = b.s;
  if (s.startOutstanding !== undefined) b.emit({ type: 'abortStart', term: s.startOutstanding, reason });
  else callStop(b);
}

function callStop(b: Builder): void {
  const term = b.s.stopPending;
  if (term === undefined || b.s.startOutstanding !== undefined) return;
  b.set({ stopPending: undefined, stopOutstanding: { term, deadline: b.now + b.s.config.stopTimeout } });
  b.emit({ type: 'callStop', term, revision: b.s.termRevision, reason: b.s.termEndReason });
}

function onStartSettled(b: Builder, term: number, ok: boolean, detail: string | undefined): void {
  if (b.s.startOutstanding !== term) return;
  b.set({ startOutstanding: undefined });
  const s = b.s;
  const stillLeading = s.phase === 'leader' && s.exit === undefined && s.stopPending === term;
  if (stillLeading && ok) return; // onStart returned early: still leader until the lease is lost.
  if (stillLeading) {
    b.count('failedStarts');
    b.log('warn', `onStart failed: ${detail ?? 'rejected'}; stepping down`);
    // The node never took the role: no onStop for this term (onStop follows a settled onStart only).
    b.set({ stopPending: undefined });
    beginExit(b, 'start-failed');
    return;
  }
  if (!ok && s.phase === 'leader') b.log('debug', `onStart ended with: ${detail ?? 'rejected'}`);
  callStop(b);
  continueExit(b);
}

function onStopSettled(b: Builder, term: number): void {
  if (b.s.stopOutstanding?.term !== term) return;
  b.set({ stopOutstanding: undefined });
  continueExit(b);
}

/** Leave the leader role voluntarily: abort onStart, run onStop, then release the lease. */
function beginExit(b: Builder, reason: Exit['reason']): void {
  b.set({ exit: { reason, deadline: b.now + b.s.config.handoverTimeout } });
  endTerm(b, reason);
  continueExit(b);
}

function continueExit(b: Builder): void {
  const s = b.s;
  if (s.exit === undefined) return;
  if (s.startOutstanding !== undefined || s.stopPending !== undefined || s.stopOutstanding !== undefined) return;
  finishExit(b);
}

function finishExit(b: Builder): void {
  const s = b.s;
  const exit = s.exit;
  if (exit === undefined) return;
  b.set({ exit: undefined });
  const wasLeader = s.phase === 'leader';
  if (s.stopOutstanding !== undefined) {
    // Abandoned: the handover deadline passed. A late answer will be ignored.
    b.count('abandonedStops');
    b.log('warn', `onStop did not finish within ${s.config.handoverTimeout} ms; handing the lease over anyway`);
    b.set({ stopOutstanding: undefined });
  }
  if (exit.reason === 'shutdown') {
    if (wasLeader) b.count('stepDowns');
    b.set({ phase: 'stopping', leaseOkSentAt: undefined, nextTickAt: undefined, leader: undefined });
    b.changeRole('stopped', 'shutdown');
    // Always: an acquire still in flight may have won the lease for us.
    const mayHold = wasLeader || s.op?.kind === 'acquire';
    b.emit({ type: 'release', reason: 'shutdown', deregister: true, awaited: true, mayHold });
    return;
  }
  if (!wasLeader) return;
  b.count('stepDowns');
  b.set({ phase: 'follower', leaseOkSentAt: undefined, leader: undefined });
  if (exit.reason === 'start-failed' || exit.reason === 'stepdown') b.set({ holdOffUntil: b.now + s.config.failureHoldOff });
  b.changeRole('secondary', exit.reason);
  b.emit({ type: 'release', reason: exit.reason, deregister: false, awaited: false, revision: s.termRevision });
}

function onReleaseResult(b: Builder, released: boolean, ok: boolean, detail: string | undefined): void {
  if (!ok) b.log('warn', `releasing the lease failed: ${detail ?? 'unknown error'}; it expires within leaseTTL`);
  else if (released) b.log('debug', 'lease released');
  if (b.s.phase === 'stopping') b.emit({ type: 'close' });
}

function onNotice(b: Builder, notice: Notice): void {
  const s = b.s;
  if (notice.revision > 0) b.see(notice.revision);
  switch (notice.type) {
    case 'released':
      if (s.phase === 'follower' && notice.nodeId !== s.config.nodeId) {
        b.count('notices');
        const followed = s.followed;
        if (s.leader !== undefined && followed !== undefined && followed.nodeId === notice.nodeId) {
          const willPromote = isEligible(b.s, b.now);
          b.emit({
            type: 'primaryLost',
            nodeId: notice.nodeId,
            revision: notice.revision,
            cause: 'released',
            willPromote,
            why: willPromote ? 'taking-over' : !s.enabled ? 'disabled' : 'holding-off',
          });
        }
        b.set({ leader: undefined });
        if (isEligible(b.s, b.now)) runOpSoon(b);
      }
      return;
    case 'elected':
      if (notice.nodeId === s.config.nodeId) return;
      if (s.phase === 'follower') {
        b.set({ leader: { nodeId: notice.nodeId, revision: notice.revision, priority: notice.priority } });
        return;
      }
      if (s.phase === 'leader' && notice.revision > s.revision) {
        // Someone else began a later term: confirm with a refresh right now.
        b.count('notices');
        runOpSoon(b);
      }
      return;
    case 'preempt':
      if (s.phase === 'leader' && s.config.strategy === 'priority' && s.exit === undefined) {
        b.count('notices');
        runOpSoon(b);
      }
      return;
  }
}

function onConnected(b: Builder): void {
  if (b.s.phase === 'follower' || b.s.phase === 'leader') runOpSoon(b);
}

/**
 * A leader hands over without leaving: abort onStart, onStop, then release (published, so a
 * standby acquires at once) and hold off for `failureHoldOff`. Ignored unless leading and not
 * already leaving (a close, preemption or failed start in progress wins).
 */
function onStepDown(b: Builder): void {
  const s = b.s;
  if (s.phase !== 'leader' || s.exit !== undefined) {
    b.log('debug', `stepDown() ignored: ${s.phase !== 'leader' ? 'not leader' : `already handing over (${s.exit?.reason ?? '?'})`}`);
    return;
  }
  b.log('info', 'stepping down on request: handing the lease over');
  beginExit(b, 'stepdown');
}

function onSetEnabled(b: Builder, enabled: boolean): void {
  if (b.s.enabled === enabled) return;
  b.set({ enabled });
  b.log('info', `failover ${enabled ? 'enabled' : 'disabled'}`);
  if (!enabled) {
    if (b.s.phase === 'leader' && b.s.exit === undefined) beginExit(b, 'disabled');
    return;
  }
  if (isEligible(b.s, b.now)) runOpSoon(b);
}

function onShutdown(b: Builder): void {
  const s = b.s;
  if (s.phase === 'stopped' || s.phase === 'stopping') return;
  if (s.phase === 'idle') {
    b.set({ phase: 'stopping' });
    b.changeRole('stopped', 'shutdown');
    b.emit({ type: 'close' });
    return;
  }
  if (s.exit !== undefined) {
    // Already handing over (preempted, failed start): finish as a close, same deadline.
    b.set({ exit: { reason: 'shutdown', deadline: s.exit.deadline } });
    continueExit(b);
    return;
  }
  if (s.phase === 'leader') {
    beginExit(b, 'shutdown');
    return;
  }
  // A follower: let callbacks of a lost term finish (bounded), then leave.
  b.set({ exit: { reason: 'shutdown', deadline: b.now + s.config.handoverTimeout } });
  callStop(b);
  continueExit(b);
}

function onClosed(b: Builder): void {
  if (b.s.phase === 'stopped') return;
  b.set({ phase: 'stopped', op: undefined, nextTickAt: undefined, exit: undefined });
  b.changeRole('stopped', 'shutdown');
}
