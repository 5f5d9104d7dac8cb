/**
 * The etcd election's decisions, as a pure state machine: `etcdStep(state, input, env)` returns
 * the next state and the effects the driver (`src/etcd/election.ts`) runs against etcd. No I/O, no timers.
 *
 * The semantics are those of etcd's own concurrency election (`clientv3/concurrency`):
 * - a session is a lease with a TTL that the node keeps alive (`keepAliveInterval`);
 * - a node campaigns by creating one key under the election prefix, bound to its lease, in a
 *   transaction guarded by `createRevision == 0`;
 * - the key with the lowest create revision leads; its create revision is the term's epoch (the
 *   fencing token): every later key was created later, so every later term's epoch is higher;
 * - a node leads only after a linearizable read showed its key first, and only while its last
 *   successful keepalive was sent less than `maxDrift` ago: past that it steps down on its own
 *   (reason `drift`), before the lease (TTL counted by etcd from the keepalive's arrival) can
 *   expire and let another node lead;
 * - a node that leaves the role resigns by deleting its key (or revoking its lease), so the next
 *   key in line leads as soon as its watch shows the deletion;
 * - priorities (lower is preferred): a node whose key is first but sees a live key of a strictly
 *   better priority does not lead: it yields (deletes its key and campaigns again, at the back of
 *   the line); a leader that sees one hands over (reason `preempted`). So the best live priority
 *   leads, in creation order among equals, and no two nodes ever hold the first key at once.
 *
 * A new term always uses a new key: after any loss of the role the node resigns its key or
 * abandons its lease, so the epoch grows per term even when the same node leads again.
 *
 * @module
 */
import { StepBuilder, type LogEffect, type StepEnv } from './step-builder.js';

/** A node's role (the contract's vocabulary). */
export type EtcdRole = 'starting' | 'secondary' | 'primary' | 'stopped';

/** Where the node is in its session and campaign. */
export type EtcdPhase =
  | 'idle'
  | 'granting'
  | 'campaigning'
  | 'candidate'
  | 'observer'
  | 'promoting'
  | 'leader'
  | 'handing-over'
  | 'resigning'
  | 'stopping'
  | 'stopped';

/** One campaign key as a range read returns it. */
export interface CampaignKey {
  readonly key: string;
  readonly createRevision: number;
  readonly nodeId: string;
  readonly priority: number;
  readonly leaseId: string;
  /**
   * The application metadata stored with the key (the driver's: the machine never reads it);
   * undefined when none, or when what was stored broke the rules (`metadataInvalid`).
   */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** The key held metadata that broke the rules: dropped, the key stays a candidate. */
  readonly metadataInvalid?: boolean | undefined;
  /** The key's mod revision, when read (a re-put of the same key raises it). */
  readonly modRevision?: number | undefined;
}

export interface EtcdMachineConfig {
  readonly nodeId: string;
  readonly priority: number;
  /** Lease TTL, ms (a whole number of seconds in etcd). */
  readonly leaseTTL: number;
  readonly keepAliveInterval: number;
  /** A primary whose last successful keepalive was sent longer ago steps down. */
  readonly maxDrift: number;
  /** Delay before a failed operation is retried. */
  readonly retryInterval: number;
  /** How long onDemote may run before the node resigns anyway. */
  readonly demoteTimeout: number;
  /** Re-read the line this often even without a watch event (a safety net). */
  readonly rankInterval: number;
  readonly enabled: boolean;
}

interface Session {
  readonly leaseId: string;
  /** Send time of the last successful keepalive (or of the grant). */
  readonly okSentAt: number;
  readonly nextKeepAliveAt: number;
  readonly keepAliveInFlight: boolean;
}

/** Why the current term ends, and what follows its callbacks. */
interface Exit {
  readonly reason: string;
  /** After onDemote: resign the key (graceful), or nothing (the session is already abandoned). */
  readonly resign: boolean;
  /** Campaign again afterwards (stepDown, preempted) or not (shutdown, disabled). */
  readonly rejoin: boolean;
  readonly demoteDeadline: number | undefined;
}

export interface EtcdMachineState {
  readonly config: EtcdMachineConfig;
  readonly role: EtcdRole;
  readonly phase: EtcdPhase;
  readonly enabled: boolean;
  readonly settled: boolean;
  readonly stopping: boolean;
  readonly session: Session | undefined;
  readonly ownKey: { readonly key: string; readonly createRevision: number } | undefined;
  /** Own term's epoch while primary; otherwise the highest create revision seen leading. */
  readonly epoch: number;
  readonly term: number;
  /** The current term's callbacks: promote running, demote running, both done. */
  readonly callbacks: 'none' | 'promoting' | 'promoted' | 'demoting';
  readonly exit: Exit | undefined;
  readonly line: readonly CampaignKey[];
  /**
   * The epochs of the terms whose leader gave them up on purpose, as last read (the release marks
   * a resign or a shutdown leaves beside the campaign keys): a leader key that goes without its
   * mark expired.
   */
  readonly released: readonly number[];
  readonly leader: { readonly instanceId: string; readonly epoch: number; readonly priority: number } | undefined;
  readonly primarySuspected: boolean;
  /** The operation awaited per kind; results of any other id are stale. */
  readonly pending: { readonly [K in OpKind]?: number };
  readonly nextOpId: number;
  readonly retryAt: number | undefined;
  readonly nextRankAt: number | undefined;
  readonly etcdOk: boolean | undefined;
  readonly lastError: string | undefined;
  readonly lastOkAt: number | undefined;
  readonly wakeAt: number | undefined;
  readonly counters: EtcdCounters;
}

export interface EtcdCounters {
  readonly promotions: number;
  readonly demotions: number;
  readonly failedPromotions: number;
  readonly driftStepDowns: number;
  readonly leasesLost: number;
  readonly yields: number;
  readonly preemptions: number;
  readonly operations: number;
  readonly operationFailures: number;
  readonly sessions: number;
}

export type OpKind = 'grant' | 'campaign' | 'rank' | 'resign' | 'keepAlive';

export type EtcdInput =
  | { readonly type: 'start' }
  | { readonly type: 'tick' }
  | { readonly type: 'granted'; readonly id: number; readonly leaseId: string; readonly sentAt: number }
  | { readonly type: 'keptAlive'; readonly id: number; readonly sentAt: number; readonly alive: boolean }
  | { readonly type: 'campaigned'; readonly id: number; readonly key: string; readonly createRevision: number }
  | {
      readonly type: 'ranked';
      readonly id: number;
      readonly line: readonly CampaignKey[];
      /** The epochs of the release marks read with the line. */
      readonly released?: readonly number[] | undefined;
    }
  | { readonly type: 'resigned'; readonly id: number }
  | { readonly type: 'opFailed'; readonly id: number; readonly kind: OpKind; readonly detail: string; readonly leaseGone?: boolean }
  /** The watch on the prefix saw a change (or reconnected). */
  | { readonly type: 'changed' }
  | { readonly type: 'promoteSettled'; readonly term: number; readonly ok: boolean; readonly detail?: string }
  | { readonly type: 'demoteSettled'; readonly term: number }
  | { readonly type: 'stepDown' }
  | { readonly type: 'setEnabled'; readonly enabled: boolean }
  | { readonly type: 'shutdown' }
  | { readonly type: 'closed' };

export type EtcdEffect =
  | { readonly type: 'grant'; readonly id: number }
  | { readonly type: 'keepAlive'; readonly id: number; readonly leaseId: string }
  | { readonly type: 'campaign'; readonly id: number; readonly leaseId: string }
  | { readonly type: 'rank'; readonly id: number }
  /** Delete the own key; `mark`: it leads, so leave the release mark of its epoch in the same step. */
  | { readonly type: 'resign'; readonly id: number; readonly key: string; readonly epoch: number; readonly mark: boolean }
  /**
   * Best effort, nobody waits for it: the lease ends with its TTL otherwise. `release`: a leading
   * key to delete with its release mark first (a shutdown).
   */
  | { readonly type: 'revoke'; readonly leaseId: string; readonly awaited: boolean; readonly release?: { readonly key: string; readonly epoch: number } }
  | { readonly type: 'callPromote'; readonly term: number; readonly epoch: number; readonly reason: string }
  | { readonly type: 'abortPromote'; readonly term: number; readonly reason: string }
  | { readonly type: 'callDemote'; readonly term: number; readonly epoch: number; readonly reason: string }
  | { readonly type: 'roleChanged'; readonly from: EtcdRole; readonly to: EtcdRole; readonly epoch: number; readonly reason: string }
  | { readonly type: 'primaryChanged'; readonly instanceId: string; readonly epoch: number; readonly priority: number }
  | {
      readonly type: 'primaryLost';
      readonly instanceId: string | undefined;
      readonly epoch: number | undefined;
      readonly cause: string;
      readonly willPromote: boolean;
      readonly reason: string;
    }
  | { readonly type: 'promotionFailed'; readonly epoch: number; readonly reason: string; readonly error: string; readonly retryInMs: number }
  | { readonly type: 'started' }
  | { readonly type: 'close' }
  | LogEffect;

const ZERO: EtcdCounters = {
  promotions: 0,
  demotions: 0,
  failedPromotions: 0,
  driftStepDowns: 0,
  leasesLost: 0,
  yields: 0,
  preemptions: 0,
  operations: 0,
  operationFailures: 0,
  sessions: 0,
};

export function initialEtcdState(config: EtcdMachineConfig): EtcdMachineState {
  return {
    config,
    role: 'starting',
    phase: 'idle',
    enabled: config.enabled,
    settled: false,
    stopping: false,
    session: undefined,
    ownKey: undefined,
    epoch: 0,
    term: 0,
    callbacks: 'none',
    exit: undefined,
    line: [],
    released: [],
    leader: undefined,
    primarySuspected: false,
    pending: {},
    nextOpId: 1,
    retryAt: undefined,
    nextRankAt: undefined,
    etcdOk: undefined,
    lastError: undefined,
    lastOkAt: undefined,
    wakeAt: undefined,
    counters: ZERO,
  };
}

class Builder extends StepBuilder<EtcdMachineState, EtcdEffect> {
  op(kind: OpKind, make: (id: number) => EtcdEffect): void {
    const id = this.s.nextOpId;
    this.set({ nextOpId: id + 1, pending: { ...this.s.pending, [kind]: id } });
    this.count('operations');
    this.emit(make(id));
  }

  done(kind: OpKind): void {
    const pending = { ...this.s.pending };
    delete pending[kind];
    this.set({ pending });
  }

  ok(): void {
    this.set({ etcdOk: true, lastOkAt: this.now });
  }

  changeRole(to: EtcdRole, reason: string): void {
    const from = this.s.role;
    if (from === to) return;
    this.set({ role: to });
    this.log('info', `role ${from} -> ${to} (${reason}, epoch ${this.s.epoch})`);
    this.emit({ type: 'roleChanged', from, to, epoch: this.s.epoch, reason });
  }
}

const isPrimary = (s: EtcdMachineState): boolean => s.role === 'primary';

/** One step of the machine. */
export function etcdStep(state: EtcdMachineState, input: EtcdInput, env: StepEnv): { state: EtcdMachineState; effects: EtcdEffect[] } {
  const b = new Builder(state, env);
  if (b.s.phase === 'stopped') return { state: b.s, effects: [] };
  // A paused or starved process learns it lost before anything else it hears is acted on.
  checkDrift(b);
  handle(b, input);
  if ((b.s.phase as EtcdPhase) !== 'stopped') schedule(b);
  else b.set({ wakeAt: undefined });
  return { state: b.s, effects: b.effects };
}

function handle(b: Builder, input: EtcdInput): void {
  const s = b.s;
  switch (input.type) {
    case 'start':
      if (s.phase !== 'idle') return;
      grant(b);
      return;
    case 'tick':
      onTick(b);
      return;
    case 'granted':
      if (s.pending.grant !== input.id) return;
      b.done('grant');
      b.ok();
      b.count('sessions');
      b.set({
        session: { leaseId: input.leaseId, okSentAt: input.sentAt, nextKeepAliveAt: b.now + s.config.keepAliveInterval, keepAliveInFlight: false },
        retryAt: undefined,
      });
      b.log('debug', `lease ${input.leaseId} granted`);
      afterSession(b);
      return;
    case 'keptAlive': {
      if (s.pending.keepAlive !== input.id || s.session === undefined) return;
      b.done('keepAlive');
      b.ok();
      if (!input.alive) {
        loseSession(b, 'lease-lost', `lease ${s.session.leaseId} expired`);
        return;
      }
      b.set({
        session: { ...s.session, okSentAt: Math.max(s.session.okSentAt, input.sentAt), keepAliveInFlight: false, nextKeepAliveAt: b.now + s.config.keepAliveInterval },
      });
      return;
    }
    case 'campaigned':
      if (s.pending.campaign !== input.id) return;
      b.done('campaign');
      b.ok();
      b.set({ ownKey: { key: input.key, createRevision: input.createRevision }, phase: s.stopping ? s.phase : 'candidate', retryAt: undefined });
      rank(b);
      return;
    case 'ranked':
      if (s.pending.rank !== input.id) return;
      b.done('rank');
      b.ok();
      if (input.released !== undefined) b.set({ released: input.released });
      onLine(b, input.line);
      return;
    case 'resigned':
      if (s.pending.resign !== input.id) return;
      b.done('resign');
      b.ok();
      afterResign(b);
      return;
    case 'opFailed':
      onFailed(b, input);
      return;
    case 'changed':
      if (s.session !== undefined && !s.stopping) rank(b);
      return;
    case 'promoteSettled':
      onPromoteSettled(b, input);
      return;
    case 'demoteSettled':
      if (input.term !== s.term || s.callbacks !== 'demoting') return;
      b.set({ callbacks: 'none' });
      afterDemote(b);
      return;
    case 'stepDown':
      if (!isPrimary(s) || s.exit !== undefined || s.stopping) return;
      endTerm(b, { reason: 'stepdown', resign: true, rejoin: true, demoteDeadline: undefined });
      return;
    case 'setEnabled':
      onSetEnabled(b, input.enabled);
      return;
    case 'shutdown':
      onShutdown(b);
      return;
    case 'closed':
      b.set({ phase: 'stopped', wakeAt: undefined, pending: {} });
      b.changeRole('stopped', 'shutdown');
      return;
  }
}

function grant(b: Builder): void {
  if (b.s.pending.grant !== undefined) return;
  b.set({ phase: 'granting' });
  b.op('grant', (id) => ({ type: 'grant', id }));
}

function rank(b: Builder): void {
  if (b.s.pending.rank !== undefined) return;
  b.set({ nextRankAt: b.now + b.s.config.rankInterval });
  b.op('rank', (id) => ({ type: 'rank', id }));
}

function campaign(b: Builder): void {
  const s = b.s;
  if (s.session === undefined || s.pending.campaign !== undefined || s.stopping) return;
  b.set({ phase: 'campaigning' });
  const leaseId = s.session.leaseId;
  b.op('campaign', (id) => ({ type: 'campaign', id, leaseId }));
}

/** With a session: campaign when allowed to, else just watch the line. */
function afterSession(b: Builder): void {
  const s = b.s;
  if (s.stopping) return;
  if (s.enabled && s.callbacks === 'none' && s.ownKey === undefined) campaign(b);
  else {
    if (!s.enabled) b.set({ phase: 'observer' });
    rank(b);
  }
}

function onTick(b: Builder): void {
  const s = b.s;
  const c = s.config;
  if (s.exit?.demoteDeadline !== undefined && s.callbacks === 'demoting' && b.now >= s.exit.demoteDeadline) {
    b.log('warn', `onDemote still running after ${c.demoteTimeout} ms: going on without it`);
    b.set({ callbacks: 'none' });
    afterDemote(b);
  }
  const session = b.s.session;
  if (session !== undefined && !session.keepAliveInFlight && b.now >= session.nextKeepAliveAt && s.phase !== 'stopping') {
    b.set({ session: { ...session, keepAliveInFlight: true } });
    b.op('keepAlive', (id) => ({ type: 'keepAlive', id, leaseId: session.leaseId }));
  }
  // A secondary's lease is surely gone once a full TTL passed since its last confirmed keepalive.
  const current = b.s.session;
  if (current !== undefined && !isPrimary(b.s) && b.now - current.okSentAt > c.leaseTTL && !b.s.stopping) {
    loseSession(b, 'lease-lost', 'no keepalive succeeded within leaseTTL');
  }
  if (b.s.retryAt !== undefined && b.now >= b.s.retryAt) {
    b.set({ retryAt: undefined });
    retry(b);
  }
  if (b.s.nextRankAt !== undefined && b.now >= b.s.nextRankAt && b.s.session !== undefined && !b.s.stopping) rank(b);
}

function retry(b: Builder): void {
  const s = b.s;
  if (s.stopping) return;
  if (s.session === undefined) grant(b);
  else if (s.enabled && s.ownKey === undefined && s.callbacks === 'none' && s.exit === undefined) campaign(b);
  else rank(b);
}

function checkDrift(b: Builder): void {
  const s = b.s;
  if (!isPrimary(s) || s.session === undefined) return;
  const age = b.now - s.session.okSentAt;
  if (age <= s.config.maxDrift) return;
  b.count('driftStepDowns');
  b.log('warn', `no keepalive confirmed for ${Math.round(age)} ms (limit ${s.config.maxDrift} ms): stepping down before the lease can expire`);
  loseSession(b, 'drift', `keepalives failing for ${Math.round(age)} ms`);
}

/**
 * The session cannot be trusted any more: drop it (revoking the lease, best effort), end the term
 * if one runs, and start a new session (a new lease, a new key, so a new epoch).
 */
function loseSession(b: Builder, reason: string, detail: string): void {
  const s = b.s;
  if (s.session !== undefined) b.count('leasesLost');
  b.set({
    session: undefined,
    ownKey: undefined,
    pending: {},
    lastError: detail,
  });
  if (isPrimary(s) && s.exit === undefined) {
    endTerm(b, { reason, resign: false, rejoin: true, demoteDeadline: undefined });
  } else if (s.exit !== undefined) {
    b.set({ exit: { ...s.exit, resign: false } });
  }
  // After the term ended (signal aborted, role changed): a standby can lead once it is revoked.
  if (s.session !== undefined) b.emit({ type: 'revoke', leaseId: s.session.leaseId, awaited: false });
  if (!b.s.stopping) {
    b.set({ phase: 'granting', retryAt: b.now + Math.min(s.config.retryInterval, 100) });
  }
  if (b.s.exit !== undefined && b.s.callbacks === 'none') finishExit(b);
}

function onFailed(b: Builder, input: Extract<EtcdInput, { type: 'opFailed' }>): void {
  const s = b.s;
  if (s.pending[input.kind] !== input.id) return;
  b.done(input.kind);
  b.count('operationFailures');
  b.set({ etcdOk: false, lastError: `${input.kind}: ${input.detail}` });
  if (input.kind === 'keepAlive') {
    if (s.session !== undefined) {
      b.set({ session: { ...s.session, keepAliveInFlight: false, nextKeepAliveAt: b.now + Math.min(s.config.retryInterval, s.config.keepAliveInterval) } });
    }
    if (input.leaseGone === true) loseSession(b, 'lease-lost', input.detail);
    return;
  }
  if (input.kind === 'campaign' && input.leaseGone === true) {
    loseSession(b, 'lease-lost', input.detail);
    return;
  }
  if (input.kind === 'resign') {
    // The key could not be deleted: give up the whole lease instead (its TTL ends it otherwise).
    loseSession(b, s.exit?.reason ?? 'resign-failed', input.detail);
    return;
  }
  b.set({ retryAt: b.now + s.config.retryInterval });
}

function onLine(b: Builder, line: readonly CampaignKey[]): void {
  const s = b.s;
  b.set({ line });
  const first = line[0];
  // What followers report: the first key is the leader (or about to lead).
  const previous = s.leader;
  if (first === undefined) {
    b.set({ leader: undefined });
  } else {
    b.set({ leader: { instanceId: first.nodeId, epoch: first.createRevision, priority: first.priority }, epoch: Math.max(s.epoch, first.createRevision) });
  }
  const own = s.ownKey;
  const ownIndex = own === undefined ? -1 : line.findIndex((k) => k.key === own.key);
  const mine = ownIndex === 0;
  if (previous !== undefined && (first === undefined || first.createRevision !== previous.epoch) && previous.instanceId !== s.config.nodeId) {
    const willPromote = mine && s.enabled && !betterExists(s, line);
    b.emit({
      type: 'primaryLost',
      instanceId: previous.instanceId,
      epoch: previous.epoch,
      cause: b.s.released.includes(previous.epoch) ? 'released' : 'expired',
      willPromote,
      reason: willPromote ? 'taking-over' : s.enabled ? 'queued' : 'disabled',
    });
  }
  if (first !== undefined && !mine && (previous === undefined || previous.epoch !== first.createRevision)) {
    b.emit({ type: 'primaryChanged', instanceId: first.nodeId, epoch: first.createRevision, priority: first.priority });
  }
  b.set({ primarySuspected: first === undefined });

  if (own !== undefined && ownIndex < 0 && s.pending.campaign === undefined) {
    // Our key is gone (lease expired, or deleted by someone): this key's term cannot go on.
    b.set({ ownKey: undefined });
    if (isPrimary(s) && s.exit === undefined) {
      endTerm(b, { reason: 'lost', resign: false, rejoin: true, demoteDeadline: undefined });
      return;
    }
    if (s.exit === undefined && s.callbacks === 'none') campaign(b);
    return;
  }
  if (isPrimary(s)) {
    if (s.exit === undefined && betterExists(s, line)) {
      b.count('preemptions');
      endTerm(b, { reason: 'preempted', resign: true, rejoin: true, demoteDeadline: undefined });
    }
    return;
  }
  // Settle as a secondary only on a line that can say so: one with our own key in it (a line read
  // before our campaign's put landed would make a lone first node report `secondary` from
  // start()), or any line once we campaign no more (disabled).
  if (!s.settled && s.session !== undefined && (ownIndex >= 0 || !s.enabled) && !(mine && s.enabled)) settle(b);
  if (!mine || !s.enabled || s.stopping || s.exit !== undefined || s.callbacks !== 'none' || s.phase !== 'candidate') return;
  if (betterExists(s, line)) {
    // First in line but not the best live priority: yield the place rather than lead.
    b.count('yields');
    b.log('debug', `yielding to a better priority`);
    settle(b);
    resign(b);
    return;
  }
  promote(
    b,
    own!.createRevision,
    previous === undefined
      ? 'startup'
      : previous.instanceId === s.config.nodeId
        ? 'reacquired'
        : b.s.released.includes(previous.epoch)
          ? 'handover'
          : 'expired',
  );
}

function betterExists(s: EtcdMachineState, line: readonly CampaignKey[]): boolean {
  return line.some((k) => k.priority < s.config.priority && k.key !== s.ownKey?.key);
}

function settle(b: Builder): void {
  if (b.s.settled) return;
  b.set({ settled: true });
  if (b.s.role === 'starting') b.changeRole('secondary', 'startup');
  b.emit({ type: 'started' });
}

function promote(b: Builder, epoch: number, reason: string): void {
  const term = b.s.term + 1;
  const wasStarting = !b.s.settled;
  b.set({ term, epoch, phase: 'promoting', callbacks: 'promoting', primarySuspected: false, leader: { instanceId: b.s.config.nodeId, epoch, priority: b.s.config.priority } });
  b.count('promotions');
  b.changeRole('primary', wasStarting ? 'startup' : reason);
  b.emit({ type: 'callPromote', term, epoch, reason: wasStarting ? 'startup' : reason });
}

function onPromoteSettled(b: Builder, input: Extract<EtcdInput, { type: 'promoteSettled' }>): void {
  const s = b.s;
  if (input.term !== s.term || s.callbacks !== 'promoting') return;
  if (s.exit !== undefined) {
    b.set({ callbacks: 'promoted' });
    startDemote(b);
    return;
  }
  if (!input.ok) {
    b.count('failedPromotions');
    b.emit({ type: 'promotionFailed', epoch: s.epoch, reason: 'failed-start', error: input.detail ?? 'onPromote failed', retryInMs: s.config.leaseTTL });
    // The term never started: no onDemote (it follows a successful onPromote only); resign now.
    b.set({ callbacks: 'none' });
    endTerm(b, { reason: 'failed-start', resign: true, rejoin: true, demoteDeadline: undefined });
    afterDemote(b);
    return;
  }
  b.set({ callbacks: 'promoted', phase: 'leader' });
  settle(b);
}

/**
 * Ends the current term: aborts onPromote's signal, reports the role change at once (the node no
 * longer acts as primary from this step on), then runs onDemote once onPromote settled, and only
 * then resigns (graceful) so the successor starts after the cleanup.
 */
function endTerm(b: Builder, exit: Exit): void {
  const s = b.s;
  b.set({ exit: { ...exit, demoteDeadline: undefined }, phase: exit.resign ? 'handing-over' : s.stopping ? 'stopping' : 'granting', leader: undefined });
  b.count('demotions');
  b.emit({ type: 'abortPromote', term: s.term, reason: exit.reason });
  b.changeRole('secondary', exit.reason);
  if (s.callbacks === 'promoted') startDemote(b);
  // 'promoting': startDemote follows promoteSettled.
}

function startDemote(b: Builder): void {
  const s = b.s;
  b.set({ callbacks: 'demoting', exit: s.exit === undefined ? undefined : { ...s.exit, demoteDeadline: b.now + s.config.demoteTimeout } });
  b.emit({ type: 'callDemote', term: s.term, epoch: s.epoch, reason: s.exit?.reason ?? 'lost' });
}

function afterDemote(b: Builder): void {
  const exit = b.s.exit;
  if (exit === undefined) return;
  if (exit.resign && b.s.ownKey !== undefined && b.s.session !== undefined) {
    if (b.s.stopping) {
      // Shutdown: revoking the lease deletes the key and ends the session in one request.
      finishExit(b);
      return;
    }
    resign(b);
    return;
  }
  finishExit(b);
}

function resign(b: Builder): void {
  const own = b.s.ownKey;
  if (own === undefined) return;
  b.set({ phase: 'resigning' });
  const leads = b.s.line[0]?.key === own.key;
  b.op('resign', (id) => ({ type: 'resign', id, key: own.key, epoch: own.createRevision, mark: leads }));
}

function afterResign(b: Builder): void {
  b.set({ ownKey: undefined });
  if (b.s.exit !== undefined) {
    finishExit(b);
    return;
  }
  // A yield: back in line, at the end.
  if (b.s.enabled && !b.s.stopping) campaign(b);
  else {
    b.set({ phase: 'observer' });
    rank(b);
  }
}

function finishExit(b: Builder): void {
  const exit = b.s.exit;
  b.set({ exit: undefined, callbacks: 'none' });
  if (b.s.stopping) {
    close(b);
    return;
  }
  if (exit?.reason === 'failed-start') {
    // Do not run again at once: a failing onPromote would otherwise loop.
    settle(b);
    b.set({ phase: b.s.session === undefined ? 'granting' : 'candidate', retryAt: b.now + b.s.config.leaseTTL });
    if (b.s.session !== undefined) rank(b);
    return;
  }
  if (b.s.session === undefined) {
    grant(b);
    return;
  }
  if (b.s.ownKey === undefined && b.s.enabled && exit?.rejoin !== false) campaign(b);
  else {
    b.set({ phase: b.s.enabled ? 'candidate' : 'observer' });
    rank(b);
  }
}

function onSetEnabled(b: Builder, enabled: boolean): void {
  const s = b.s;
  if (s.enabled === enabled) return;
  b.set({ enabled });
  b.log('info', `failover ${enabled ? 'enabled' : 'disabled'}`);
  if (s.stopping) return;
  if (!enabled) {
    if (isPrimary(s) && s.exit === undefined) {
      endTerm(b, { reason: 'disabled', resign: true, rejoin: false, demoteDeadline: undefined });
      return;
    }
    if (s.ownKey !== undefined && s.exit === undefined && s.pending.resign === undefined) resign(b);
    return;
  }
  if (s.session !== undefined && s.ownKey === undefined && s.exit === undefined && s.callbacks === 'none') campaign(b);
}

function onShutdown(b: Builder): void {
  const s = b.s;
  if (s.stopping) return;
  b.set({ stopping: true, retryAt: undefined, nextRankAt: undefined });
  if (isPrimary(s) && s.exit === undefined) {
    endTerm(b, { reason: 'shutdown', resign: true, rejoin: false, demoteDeadline: undefined });
    b.set({ phase: 'stopping' });
    return;
  }
  if (s.exit !== undefined) {
    b.set({ exit: { ...s.exit, rejoin: false }, phase: 'stopping' });
    if (s.callbacks === 'none' && s.pending.resign === undefined) finishExit(b);
    return;
  }
  close(b);
}

function close(b: Builder): void {
  const s = b.s;
  b.set({ phase: 'stopping', retryAt: undefined, nextRankAt: undefined });
  if (s.session !== undefined) {
    const own = s.ownKey;
    const leads = own !== undefined && s.line[0]?.key === own.key;
    b.emit({
      type: 'revoke',
      leaseId: s.session.leaseId,
      awaited: true,
      ...(leads ? { release: { key: own.key, epoch: own.createRevision } } : {}),
    });
  }
  b.set({ session: undefined, ownKey: undefined, pending: {} });
  b.emit({ type: 'close' });
}

function schedule(b: Builder): void {
  const s = b.s;
  const times: number[] = [];
  if (s.session !== undefined && !s.session.keepAliveInFlight && !s.stopping) times.push(s.session.nextKeepAliveAt);
  if (s.session !== undefined && isPrimary(s)) times.push(s.session.okSentAt + s.config.maxDrift + 1);
  if (s.session !== undefined && !isPrimary(s) && !s.stopping) times.push(s.session.okSentAt + s.config.leaseTTL + 1);
  if (s.retryAt !== undefined) times.push(s.retryAt);
  if (s.nextRankAt !== undefined && s.session !== undefined && !s.stopping) times.push(s.nextRankAt);
  if (s.callbacks === 'demoting' && s.exit?.demoteDeadline !== undefined) times.push(s.exit.demoteDeadline);
  b.set({ wakeAt: times.length === 0 ? undefined : Math.min(...times) });
}
