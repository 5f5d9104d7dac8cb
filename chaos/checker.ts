/**
 * The chaos checker: a pure function from a recorded {@link History} to a {@link CheckReport}.
 * No I/O, no clock, no randomness: the same history always gives the same report, so it is unit
 * tested on hand-made histories (test/chaos/checker.test.ts) apart from the fault injector.
 *
 * ## Role intervals
 *
 * For every process (one incarnation) the checker rebuilds the intervals during which it was
 * primary, from its `roleChanged` events (`changedAt`, the moment the role changed inside the
 * watcher). An interval opens at a change to `primary` and closes at:
 *
 * - its own change away from `primary` (`shutdown`, `stepdown`, `higher-epoch`), when reported.
 *   For a graceful shutdown that is the change to `stopped`, which the watcher stamps with the
 *   step that decided it: after `onDemote` settled and right before it releases the endpoint,
 *   so a successor, which can bind only after that release, starts later. The injector's
 *   shutdown command, or the child's `shutdownCalled` event, is *not* an end: the node is still
 *   primary while it runs `onDemote`; using it would hide an overlap.
 * - its death by SIGKILL from the injector: the end lies in `[kill.at, kill.doneAt]`, the times
 *   just before and just after `kill(2)`. `kill.doneAt` is an upper bound of the moment the role
 *   ended because SIGKILL cannot be caught and, once `kill(2)` returned, the process runs no more
 *   user code (up to the IPI that stops a process running on another core: microseconds). That
 *   holds only if (a) the process really died of that signal (its exit says `SIGKILL`, else it is
 *   a crash of its own), (b) it reported nothing stamped after `kill.doneAt` (checked; a later
 *   event is an `inconsistent-history` violation) and (c) it was not already out of the role
 *   unreported, which only makes the interval longer, i.e. the check stricter. A SIGSTOPped (or
 *   event-loop-blocked) primary is still primary while stopped: its interval runs on until it is
 *   continued and steps down, or until it is killed.
 * - its exit on its own (a crash): `[last event, exit observed]`, the widest honest range.
 * - still open at the end of the history: open (it must not overlap anything later).
 *
 * A process killed right after `onPromote` was called may die before its `roleChanged` reached
 * the injector (notifications are delivered asynchronously). Its `promote` event (sent from
 * `onPromote`, when the node already holds the endpoint) then opens an *unconfirmed* interval,
 * closed the same way: it takes part in the overlap and epoch checks.
 *
 * ## What it asserts
 *
 * 1. **No split brain**: no two intervals overlap. With ends known as ranges, an overlap is
 *    definite when a later interval starts before the earlier one's earliest possible end minus
 *    the tolerance (clock resolution); one that falls only inside the uncertainty of a kill is
 *    counted as `possibleOverlaps`, not as a violation.
 * 2. **Epochs strictly grow** across successive primaries (intervals ordered by start).
 * 3. **Every loss of the primary is followed by a new primary within the bound of its cause**,
 *    measured from the fault (the SIGKILL, the shutdown or stepDown command) to the next
 *    `roleChanged` to primary: `crashBound` for a SIGKILL, `shutdownBound` for a graceful
 *    shutdown or step-down. A hang (SIGSTOP, blocked event loop) is not a loss: no takeover may
 *    happen while the hung primary is stopped (that would be an overlap); if it is then killed,
 *    the crash bound applies from the kill (cause `hang`).
 *    Nobody can take over before the lost process is gone (its endpoint is freed by its own
 *    threads closing the socket, or by its death), and on a loaded machine the kernel may need
 *    hundreds of ms to tear a SIGKILLed process down: for a crash, a hang or a shutdown, the bound
 *    runs from the later of the fault and the process's exit as the injector observed it (an
 *    upper bound of its death). The latency reported is still the one from the fault.
 *    The bound is only demanded when it can be met: the clock restarts at every later disturbance
 *    in the window (a kill, shutdown, step-down or disable of another node, or the end of a
 *    SIGSTOP/block of any node, which may have won the bind unseen), and a loss is excused when no
 *    *eligible successor* existed: a node that was ready, followed the lost primary (reported a
 *    `primaryChanged` to its instanceId and epoch) before the fault, and stayed alive, running,
 *    enabled and not holding off after a step-down until the deadline.
 * 4. **No process exited on its own**: every exit is a SIGKILL the injector sent, or a code 0
 *    after a shutdown command it sent; a graceful shutdown the injector had to finish with a
 *    SIGKILL is a violation too, and so is a `startFailed`.
 *
 * @module
 */
import type { Fault, History, HistoryEvent, ProcessRecord } from './history.js';

/** Bounds of the check, ms. */
export interface CheckOptions {
  /**
   * Fault (SIGKILL) to the next `roleChanged` to primary, for a crashed primary (also one killed
   * while hung).
   * @default 250
   */
  readonly crashBound: number;
  /**
   * Shutdown (or stepDown) command to the next `roleChanged` to primary.
   * @default 250
   */
  readonly shutdownBound: number;
  /**
   * Clock resolution across processes: overlaps and late events shorter than this are ignored.
   * @default 1
   */
  readonly tolerance: number;
  /**
   * Lease mode (etcd, PostgreSQL, Redis), off when undefined (the ZeroMQ model). A lease
   * backend's primary that is SIGSTOPped long enough for its lease (etcd, Redis) or its session
   * (PostgreSQL) to run out is replaced while it is stopped: by design, since a stopped process
   * runs no code and so acts on nothing. In lease mode such a takeover is not a split brain when
   * the successor's epoch is higher (a fenced store rejects the stopped one's late writes) and,
   * once continued, the stopped primary reports its step-down within `wakeBound` ms (it learns
   * it lost before it acts again); its term then counts as ended when it was stopped. A takeover
   * before the stop, or a step-down later than `wakeBound` after the SIGCONT, stays a split brain.
   */
  readonly wakeBound?: number;
}

export const DEFAULT_CHECK_OPTIONS: CheckOptions = Object.freeze({ crashBound: 250, shutdownBound: 250, tolerance: 1 });

/** How a primary interval ended. */
export type EndCause =
  /** SIGKILLed by the injector while running. */
  | 'crash'
  /** SIGKILLed by the injector while stopped or blocked. */
  | 'hang'
  /** Reported a change to `stopped` (graceful shutdown). */
  | 'shutdown'
  | 'stepdown'
  /** Stepped down on a higher epoch. */
  | 'demoted'
  /** Exited without being killed or asked to: a crash of its own. */
  | 'exit'
  /** An unconfirmed term whose onPromote failed. */
  | 'failed'
  /** Killed by the teardown at the end of the run. */
  | 'teardown'
  /** Still primary at the end of the history. */
  | 'open';

/** The causes of a loss of the primary that demand a takeover. */
export type LossCause = 'crash' | 'hang' | 'shutdown' | 'stepdown' | 'demoted' | 'exit';
export const LOSS_CAUSES: readonly LossCause[] = ['crash', 'hang', 'shutdown', 'stepdown', 'demoted', 'exit'];

export interface RoleInterval {
  /** The process record's key. */
  readonly process: string;
  readonly instanceId: string;
  readonly epoch: number;
  /** Why it became primary (the roleChanged reason; `promote` for an unconfirmed term). */
  readonly reason: string;
  readonly start: number;
  /** The role ended no earlier than this... */
  readonly endEarliest: number;
  /** ...and no later than this. `Infinity` while open. */
  readonly endLatest: number;
  readonly endCause: EndCause;
  /** False for a term seen only through its `promote` event. */
  readonly confirmed: boolean;
}

/** A loss of the primary and what followed. */
export interface LossRecord {
  readonly lost: RoleInterval;
  readonly cause: LossCause;
  /** The fault the latency is measured from (or the end of the role, without one). */
  readonly faultAt: number;
  /**
   * When the lost process was gone: for a process that died of the fault (SIGKILL, or exit after
   * a shutdown), the later of `faultAt` and its exit as observed; else `faultAt`.
   */
  readonly goneAt: number;
  /** Where the bound was counted from: `goneAt`, or the last disturbance after the fault. */
  readonly base: number;
  /** Some other node was disturbed (killed, stopped, ...) between the fault and the takeover. */
  readonly disturbed: boolean;
  readonly deadline: number;
  readonly next: RoleInterval | undefined;
  /** `next.start - faultAt`. */
  readonly latency: number | undefined;
  readonly outcome: 'ok' | 'late' | 'excused-no-successor' | 'unchecked-run-ended' | 'overlap';
}

export type Violation =
  | {
      readonly kind: 'split-brain';
      readonly message: string;
      readonly first: RoleInterval;
      readonly second: RoleInterval;
      readonly overlapMs: number;
      /** The first holder was stopped or blocked when the second took over. */
      readonly duringHang: boolean;
    }
  | { readonly kind: 'epoch-regression'; readonly message: string; readonly previous: RoleInterval; readonly next: RoleInterval }
  | {
      readonly kind: 'missing-takeover';
      readonly message: string;
      readonly loss: LossRecord;
      /** Nodes that could have taken over. */
      readonly eligible: readonly string[];
    }
  | {
      readonly kind: 'self-crash';
      readonly message: string;
      readonly process: string;
      readonly exit: ProcessRecord['exit'];
      readonly stderrTail: string | undefined;
    }
  | { readonly kind: 'start-failed'; readonly message: string; readonly process: string }
  | { readonly kind: 'shutdown-hung'; readonly message: string; readonly process: string }
  | { readonly kind: 'inconsistent-history'; readonly message: string; readonly process: string };

export type ViolationKind = Violation['kind'];

/** Summary figures of one run. */
export interface CheckStats {
  readonly processes: number;
  readonly faultsByKind: Readonly<Record<string, number>>;
  /** Primary terms seen (confirmed by roleChanged). */
  readonly primaryTerms: number;
  /** Terms seen only through `promote` (the node died before reporting the role). */
  readonly unconfirmedTerms: number;
  readonly maxEpoch: number;
  /** Losses followed by a new primary, by cause. */
  readonly failovers: Readonly<Record<LossCause, number>>;
  /** Fault-to-takeover latencies (ms) of losses with no disturbance in their window, by cause. */
  readonly takeoverMs: Readonly<Record<LossCause, readonly number[]>>;
  /** Latencies of losses whose window was disturbed (checked against the moved deadline). */
  readonly disturbedTakeoverMs: Readonly<Record<LossCause, readonly number[]>>;
  /** Of the undisturbed losses: fault to the lost process's observed exit, when later. */
  readonly teardownMs: Readonly<Record<LossCause, readonly number[]>>;
  /** The roleChanged reasons of the nodes that took over. */
  readonly takeoverReasons: Readonly<Record<string, number>>;
  readonly lossesExcused: number;
  readonly lossesUnchecked: number;
  readonly splitBrains: number;
  /** Overlaps that fall only inside the uncertainty of a kill's timing. */
  readonly possibleOverlaps: number;
  /** Times a primary was stopped or blocked; of them, how many resumed as primary; the longest. */
  readonly primaryHangs: number;
  readonly primaryHangsResumed: number;
  readonly longestPrimaryHangMs: number;
  /** Lease mode: primaries replaced while stopped (see `wakeBound`). */
  readonly replacedWhileStopped: number;
  /** Lease mode: of those continued, the longest SIGCONT -> own step-down report, ms. */
  readonly longestWakeMs: number;
}

export interface CheckReport {
  readonly ok: boolean;
  readonly violations: readonly Violation[];
  readonly stats: CheckStats;
  readonly intervals: readonly RoleInterval[];
  readonly losses: readonly LossRecord[];
}

// ---------------------------------------------------------------------------------------------

interface Pause {
  readonly from: number;
  /** `Infinity` if never resumed nor killed. */
  readonly to: number;
  readonly endedBy: 'cont' | 'kill' | 'unblocked' | 'none';
}

/** What the checker derives about one process. */
interface ProcessView {
  readonly rec: ProcessRecord;
  readonly faults: readonly Fault[];
  readonly kill: Fault | undefined;
  readonly readyAt: number | undefined;
  readonly pauses: readonly Pause[];
  readonly intervals: RoleInterval[];
  /** Latest time anything of it is known to have happened. */
  readonly lastEventAt: number;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** When an event happened: `changedAt` for role changes, `promoteAt` for promotions, else `at`. */
export function eventTime(e: HistoryEvent): number {
  if (e.type === 'roleChanged') return num(e.changedAt) ?? e.at;
  if (e.type === 'promote') return num(e.promoteAt) ?? e.at;
  return e.at;
}

function zeroByCause<T>(make: () => T): Record<LossCause, T> {
  return Object.fromEntries(LOSS_CAUSES.map((c) => [c, make()])) as Record<LossCause, T>;
}

/** The p-th percentile (0..100) of samples, nearest-rank; undefined for none. */
export function percentile(samples: readonly number[], p: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

const fmt = (ms: number): string => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : 'never');
/** A time relative to the start of the run, for messages. */
const rel = (h: History, t: number): string => (Number.isFinite(t) ? `+${((t - h.startedAt) / 1000).toFixed(3)} s` : 'the end');

/** Checks a history. Pure. */
export function checkHistory(history: History, options: Partial<CheckOptions> = {}): CheckReport {
  const o: CheckOptions = { ...DEFAULT_CHECK_OPTIONS, ...options };
  const violations: Violation[] = [];
  const faultsOf = new Map<string, Fault[]>();
  for (const f of history.faults) {
    const list = faultsOf.get(f.target) ?? [];
    list.push(f);
    faultsOf.set(f.target, list);
  }

  const views = history.processes.map((rec) => analyseProcess(history, rec, faultsOf.get(rec.key) ?? [], o, violations));
  const intervals = views.flatMap((v) => v.intervals).sort((a, b) => a.start - b.start || a.process.localeCompare(b.process));
  const viewOf = new Map(views.map((v) => [v.rec.key, v]));

  // 1. No two primaries at once.
  let splitBrains = 0;
  let possibleOverlaps = 0;
  const replaced = new Set<RoleInterval>();
  let longestWakeMs = 0;
  for (let j = 0; j < intervals.length; j++) {
    const b = intervals[j]!;
    for (let i = 0; i < j; i++) {
      const a = intervals[i]!;
      if (a.process === b.process) continue;
      const wake = o.wakeBound === undefined ? undefined : replacedWhileStopped(viewOf.get(a.process)!, a, b, o.wakeBound, o.tolerance);
      if (wake !== undefined) {
        replaced.add(a);
        longestWakeMs = Math.max(longestWakeMs, wake);
        continue;
      }
      if (b.start < a.endEarliest - o.tolerance) {
        splitBrains++;
        const pausedAtTakeover = (viewOf.get(a.process)?.pauses ?? []).some((p) => p.from <= b.start && b.start < p.to);
        const overlapMs = Math.min(a.endEarliest, b.endEarliest) - b.start;
        violations.push({
          kind: 'split-brain',
          message:
            `two primaries at once: ${a.process} (epoch ${a.epoch}, from ${rel(history, a.start)} to ${endText(history, a)}) and ` +
            `${b.process} (epoch ${b.epoch}, from ${rel(history, b.start)}), overlapping ${fmt(overlapMs)}` +
            (pausedAtTakeover ? `; ${a.process} was stopped/blocked, still holding the role, when ${b.process} took over` : ''),
          first: a,
          second: b,
          overlapMs,
          duringHang: pausedAtTakeover,
        });
      } else if (b.start < a.endLatest - o.tolerance) {
        possibleOverlaps++;
      }
    }
  }

  // 2. Epochs strictly grow across successive primaries.
  let top: RoleInterval | undefined;
  for (const iv of intervals) {
    if (top !== undefined && iv.epoch <= top.epoch) {
      violations.push({
        kind: 'epoch-regression',
        message: `${iv.process} became primary with epoch ${iv.epoch} at ${rel(history, iv.start)}, not above epoch ${top.epoch} of ${top.process} (from ${rel(history, top.start)})`,
        previous: top,
        next: iv,
      });
    }
    if (top === undefined || iv.epoch > top.epoch) top = iv;
  }

  // 3. Every loss is followed by a new primary in time.
  const losses: LossRecord[] = [];
  const failovers = zeroByCause(() => 0);
  const takeoverMs = zeroByCause<number[]>(() => []);
  const disturbedTakeoverMs = zeroByCause<number[]>(() => []);
  const teardownMs = zeroByCause<number[]>(() => []);
  const takeoverReasons: Record<string, number> = {};
  let lossesExcused = 0;
  let lossesUnchecked = 0;
  const allPauses = views.flatMap((v) => v.pauses.map((p) => ({ process: v.rec.key, ...p })));

  for (const lost of intervals) {
    const cause = lossCause(lost.endCause);
    // A lease primary replaced while stopped was lost when its lease ran out, not at its end.
    if (cause === undefined || replaced.has(lost)) continue;
    const view = viewOf.get(lost.process)!;
    const faultAt = lossFaultAt(lost, cause, view);
    const next = intervals.find((iv) => iv !== lost && iv.start > lost.start);
    const bound = cause === 'shutdown' || cause === 'stepdown' ? o.shutdownBound : o.crashBound;
    const windowEnd = next?.start ?? history.endedAt;

    if (next !== undefined && next.start < faultAt - o.tolerance) {
      // It took over before the fault: reported as a split brain above.
      const latency = next.start - faultAt;
      losses.push({ lost, cause, faultAt, goneAt: faultAt, base: faultAt, disturbed: false, deadline: faultAt + bound, next, latency, outcome: 'overlap' });
      continue;
    }

    // The endpoint is free only once the kernel has torn the lost process down (its listening
    // socket is closed by its own threads or by its death): on a loaded machine that can take
    // hundreds of ms after the SIGKILL. Nobody can take over before, so the watcher is judged
    // from then. The exit as observed by the injector is an upper bound of that moment.
    const exitAt = view.rec.exit?.observedAt;
    const departs = cause === 'crash' || cause === 'hang' || cause === 'shutdown';
    const goneAt = departs && exitAt !== undefined && exitAt > faultAt && exitAt < windowEnd ? exitAt : faultAt;

    // Disturbances after the fault move the start of the bound.
    let disturbedAt = faultAt;
    for (const f of history.faults) {
      if (f.final || f.target === lost.process || f.at <= faultAt || f.at >= windowEnd) continue;
      // The end of a server pause or restart (lease backends) restarts the bound too: nobody could lead meanwhile.
      if (f.kind === 'kill' || f.kind === 'shutdown' || f.kind === 'stepDown' || f.kind === 'serverCont' || f.kind === 'serverRestart' || (f.kind === 'setEnabled' && f.value === false)) {
        disturbedAt = Math.max(disturbedAt, f.doneAt);
      }
    }
    for (const p of allPauses) {
      if (p.process === lost.process) continue;
      if (p.from < windowEnd && p.to > faultAt) disturbedAt = Math.max(disturbedAt, p.to);
    }
    const disturbed = disturbedAt > faultAt;
    const base = Math.max(goneAt, disturbedAt);
    // Lease mode: a node killed or stopped shortly before may still hold the next place in line
    // (its etcd key, its Redis claim) until its lease runs out, so a graceful handover can wait
    // for that lease: not later than the crash bound after that fault.
    let deadline = base + bound;
    if (o.wakeBound !== undefined) {
      for (const f of history.faults) {
        if ((f.kind === 'kill' || f.kind === 'stop') && f.target !== lost.process && f.at < faultAt && f.doneAt + o.crashBound > deadline) {
          deadline = f.doneAt + o.crashBound;
        }
      }
    }
    const latency = next === undefined ? undefined : next.start - faultAt;

    let outcome: LossRecord['outcome'];
    if (next !== undefined && next.start <= deadline) {
      outcome = 'ok';
    } else if (deadline > history.endedAt && (next === undefined || next.start > history.endedAt)) {
      outcome = 'unchecked-run-ended';
    } else {
      const eligible = eligibleSuccessors(views, lost, faultAt, deadline, history.heartbeatTimeout);
      outcome = eligible.length > 0 ? 'late' : 'excused-no-successor';
      if (outcome === 'late') {
        const record: LossRecord = { lost, cause, faultAt, goneAt, base, disturbed, deadline, next, latency, outcome };
        const stalled = (history.injectorStalls ?? []).filter((st) => st.at > faultAt && st.at - st.ms < deadline);
        violations.push({
          kind: 'missing-takeover',
          message:
            `${cause} of primary ${lost.process} (epoch ${lost.epoch}) at ${rel(history, faultAt)}: ` +
            (next === undefined
              ? `no new primary by the end of the run (${fmt(history.endedAt - faultAt)} later)`
              : `next primary ${next.process} only after ${fmt(next.start - faultAt)}`) +
            `; bound ${bound} ms from ${base === faultAt ? 'the fault' : base === goneAt ? `its exit at +${fmt(goneAt - faultAt)}` : `the last disturbance at +${fmt(base - faultAt)}`}` +
            (deadline > base + bound ? ` (waiting out a lease of a node killed or stopped before, until +${fmt(deadline - faultAt)})` : '') +
            `; could have taken over: ${eligible.join(', ')}` +
            (stalled.length > 0 ? `; the injector itself stalled up to ${fmt(Math.max(...stalled.map((st) => st.ms)))} meanwhile` : ''),
          loss: record,
          eligible,
        });
      }
    }
    losses.push({ lost, cause, faultAt, goneAt, base, disturbed, deadline, next, latency, outcome });
    if (outcome === 'excused-no-successor') lossesExcused++;
    if (outcome === 'unchecked-run-ended') lossesUnchecked++;
    if (next !== undefined && latency !== undefined && next.start <= history.endedAt) {
      failovers[cause]++;
      (disturbed ? disturbedTakeoverMs : takeoverMs)[cause].push(latency);
      if (!disturbed && goneAt > faultAt) teardownMs[cause].push(goneAt - faultAt);
      takeoverReasons[next.reason] = (takeoverReasons[next.reason] ?? 0) + 1;
    }
  }

  // Hangs of a primary (information; their safety is the overlap check).
  let primaryHangs = 0;
  let primaryHangsResumed = 0;
  let longestPrimaryHangMs = 0;
  for (const v of views) {
    for (const p of v.pauses) {
      const iv = v.intervals.find((i) => i.start <= p.from && p.from < i.endLatest);
      if (iv === undefined) continue;
      primaryHangs++;
      const end = Number.isFinite(p.to) ? p.to : history.endedAt;
      longestPrimaryHangMs = Math.max(longestPrimaryHangMs, end - p.from);
      if (p.endedBy !== 'kill' && iv.endEarliest > end) primaryHangsResumed++;
    }
  }

  const faultsByKind: Record<string, number> = {};
  for (const f of history.faults) {
    if (f.final) continue;
    const kind = f.kind === 'setEnabled' ? (f.value ? 'enable' : 'disable') : f.kind;
    faultsByKind[kind] = (faultsByKind[kind] ?? 0) + 1;
  }

  return {
    ok: violations.length === 0,
    violations,
    intervals,
    losses,
    stats: {
      processes: history.processes.length,
      faultsByKind,
      primaryTerms: intervals.filter((i) => i.confirmed).length,
      unconfirmedTerms: intervals.filter((i) => !i.confirmed).length,
      maxEpoch: intervals.reduce((m, i) => Math.max(m, i.epoch), 0),
      failovers,
      takeoverMs,
      disturbedTakeoverMs,
      teardownMs,
      takeoverReasons,
      lossesExcused,
      lossesUnchecked,
      splitBrains,
      possibleOverlaps,
      primaryHangs,
      primaryHangsResumed,
      longestPrimaryHangMs,
      replacedWhileStopped: replaced.size,
      longestWakeMs,
    },
  };
}

/**
 * Lease mode: whether `b` took over from `a` while `a`'s process was stopped, in a way that is
 * not a split brain (see `CheckOptions.wakeBound`). Returns the SIGCONT -> step-down time (0 when
 * it was killed while stopped), or undefined when the rule does not apply.
 */
function replacedWhileStopped(view: ProcessView, a: RoleInterval, b: RoleInterval, wakeBound: number, tolerance: number): number | undefined {
  if (b.epoch <= a.epoch || b.start < a.start || b.start >= a.endEarliest - tolerance) return undefined;
  const stops = view.faults.filter((f) => f.kind === 'stop');
  for (const p of view.pauses) {
    // SIGSTOPs only: a blocked event loop still runs its timers' backlog the instant it unblocks.
    if (!stops.some((f) => f.at === p.from) || p.from < a.start || b.start < p.from || b.start >= p.to) continue;
    if (p.endedBy === 'kill') return a.endLatest <= p.to + tolerance ? 0 : undefined;
    if (p.endedBy !== 'cont') return undefined;
    // Continued: it must report a change away from primary within wakeBound.
    if (!Number.isFinite(a.endEarliest) || a.endCause === 'open') return undefined;
    const wake = a.endEarliest - p.to;
    return wake <= wakeBound ? Math.max(0, wake) : undefined;
  }
  return undefined;
}

function endText(h: History, iv: RoleInterval): string {
  if (!Number.isFinite(iv.endLatest)) return 'the end';
  if (iv.endLatest - iv.endEarliest < 0.05) return `${rel(h, iv.endEarliest)} (${iv.endCause})`;
  return `${rel(h, iv.endEarliest)}..${rel(h, iv.endLatest)} (${iv.endCause})`;
}

function lossCause(end: EndCause): LossCause | undefined {
  return (LOSS_CAUSES as readonly string[]).includes(end) ? (end as LossCause) : undefined;
}

/** The moment the loss is measured from. */
function lossFaultAt(lost: RoleInterval, cause: LossCause, view: ProcessView): number {
  switch (cause) {
    case 'crash':
    case 'hang':
      return view.kill?.at ?? lost.endEarliest;
    case 'shutdown':
    case 'stepdown': {
      const kind = cause === 'shutdown' ? 'shutdown' : 'stepDown';
      const command = [...view.faults].reverse().find((f) => f.kind === kind && f.at <= lost.endEarliest);
      return command?.at ?? lost.endEarliest;
    }
    case 'exit':
      // Its death is known only as [last event, exit observed]: measure from the latter.
      return lost.endLatest;
    default:
      return lost.endEarliest;
  }
}

/** Nodes that could have taken over from `lost` between the fault and the deadline. */
function eligibleSuccessors(
  views: readonly ProcessView[],
  lost: RoleInterval,
  faultAt: number,
  deadline: number,
  heartbeatTimeout: number,
): string[] {
  const out: string[] = [];
  for (const v of views) {
    if (v.rec.key === lost.process) continue;
    if (v.readyAt === undefined || v.readyAt > faultAt) continue;
    const followed = v.rec.events.some(
      (e) => e.type === 'primaryChanged' && e.instanceId === lost.instanceId && e.epoch === lost.epoch && e.at <= faultAt,
    );
    if (!followed) continue;
    if (v.rec.exit !== undefined && v.rec.exit.observedAt <= deadline) continue;
    if (v.faults.some((f) => (f.kind === 'kill' || f.kind === 'shutdown') && f.at <= deadline)) continue;
    if (v.faults.some((f) => f.kind === 'stepDown' && f.at <= deadline && f.at >= faultAt - heartbeatTimeout - 1)) continue;
    if (v.pauses.some((p) => p.from <= deadline && p.to >= faultAt)) continue;
    if (!enabledThroughout(v, faultAt, deadline)) continue;
    out.push(v.rec.key);
  }
  return out;
}

/**
 * Enabled during all of [from, to]: a disable counts from the moment the command was sent, an
 * enable from the moment the child reported it applied (`enabledSet`).
 */
function enabledThroughout(v: ProcessView, from: number, to: number): boolean {
  let enabled = v.rec.enabled;
  for (const f of v.faults) {
    if (f.kind !== 'setEnabled') continue;
    if (f.at > to) break;
    if (f.value === false) {
      if (f.at >= from) return false;
      enabled = false;
    } else {
      const applied = v.rec.events.find((e) => e.type === 'enabledSet' && e.value === true && e.at >= f.at - 1);
      enabled = applied !== undefined && applied.at <= from;
    }
  }
  return enabled;
}

function analyseProcess(
  history: History,
  rec: ProcessRecord,
  faults: readonly Fault[],
  o: CheckOptions,
  violations: Violation[],
): ProcessView {
  const key = rec.key;
  const events = rec.events;
  const kill = faults.find((f) => f.kind === 'kill');
  const readyAt = events.find((e) => e.type === 'ready')?.at;
  const lastEventAt = events.reduce((m, e) => Math.max(m, e.at, eventTime(e)), rec.spawnedAt);

  // Pauses: SIGSTOP until SIGCONT or SIGKILL; a blocked event loop until it reports unblocked.
  const pauses: Pause[] = [];
  let stoppedFrom: number | undefined;
  for (const f of faults) {
    if (f.kind === 'stop' && stoppedFrom === undefined) stoppedFrom = f.at;
    else if (f.kind === 'cont' && stoppedFrom !== undefined) {
      pauses.push({ from: stoppedFrom, to: f.doneAt, endedBy: 'cont' });
      stoppedFrom = undefined;
    } else if (f.kind === 'kill' && stoppedFrom !== undefined) {
      pauses.push({ from: stoppedFrom, to: f.doneAt, endedBy: 'kill' });
      stoppedFrom = undefined;
    } else if (f.kind === 'block') {
      const unblocked = events.find((e) => e.type === 'unblocked' && e.at >= f.at);
      if (unblocked !== undefined) pauses.push({ from: f.at, to: unblocked.at, endedBy: 'unblocked' });
      else if (kill !== undefined && kill.at >= f.at) pauses.push({ from: f.at, to: kill.doneAt, endedBy: 'kill' });
      else pauses.push({ from: f.at, to: Infinity, endedBy: 'none' });
    }
    if (f === kill) break;
  }
  if (stoppedFrom !== undefined) pauses.push({ from: stoppedFrom, to: Infinity, endedBy: 'none' });

  // How did it end?
  const exit = rec.exit;
  let exitExplained = true;
  if (exit !== undefined) {
    const killed = exit.signal === 'SIGKILL' && kill !== undefined && kill.at <= exit.observedAt;
    const shutdownAsked = faults.some((f) => f.kind === 'shutdown' && f.at <= exit.observedAt);
    const graceful = exit.code === 0 && exit.signal === null && shutdownAsked;
    if (!killed && !graceful) {
      exitExplained = false;
      violations.push({
        kind: 'self-crash',
        message: `${key} (pid ${rec.pid}) exited on its own: code ${exit.code}, signal ${exit.signal}, seen at ${rel(history, exit.observedAt)}`,
        process: key,
        exit,
        stderrTail: rec.stderrTail,
      });
    }
  }
  for (const e of events) {
    if (e.type === 'startFailed') {
      violations.push({ kind: 'start-failed', message: `${key} failed to start: ${str(e.message) ?? str(e.code) ?? '?'}`, process: key });
    }
  }
  if (kill !== undefined && kill.note === 'shutdown-timeout') {
    violations.push({ kind: 'shutdown-hung', message: `${key} did not finish a graceful shutdown; the injector had to SIGKILL it`, process: key });
  }
  if (kill !== undefined && exit?.signal === 'SIGKILL') {
    const late = events.find((e) => Math.max(e.at, eventTime(e)) > kill.doneAt + o.tolerance);
    if (late !== undefined) {
      violations.push({
        kind: 'inconsistent-history',
        message: `${key} reported ${late.type} at ${rel(history, late.at)}, after it was SIGKILLed at ${rel(history, kill.doneAt)}`,
        process: key,
      });
    }
  }

  /** Closes a term still open when the events ran out. */
  const closeByDeath = (): { endEarliest: number; endLatest: number; endCause: EndCause } => {
    if (kill !== undefined && (exit === undefined || exitExplained)) {
      const hung = pauses.some((p) => p.from <= kill.at && p.endedBy === 'kill');
      return { endEarliest: kill.at, endLatest: kill.doneAt, endCause: kill.final ? 'teardown' : hung ? 'hang' : 'crash' };
    }
    if (exit !== undefined) {
      if (exitExplained) {
        violations.push({ kind: 'inconsistent-history', message: `${key} exited gracefully while primary without reporting the change`, process: key });
      }
      return { endEarliest: lastEventAt, endLatest: exit.observedAt, endCause: 'exit' };
    }
    return { endEarliest: Infinity, endLatest: Infinity, endCause: 'open' };
  };

  // Role intervals from roleChanged; unconfirmed ones from promote.
  const intervals: RoleInterval[] = [];
  let role = 'starting';
  let open: { start: number; epoch: number; reason: string } | undefined;
  let pending: { start: number; epoch: number } | undefined;
  const pushUnconfirmed = (end: { endEarliest: number; endLatest: number; endCause: EndCause }): void => {
    if (pending === undefined) return;
    intervals.push({ process: key, instanceId: rec.instanceId, epoch: pending.epoch, reason: 'promote', start: pending.start, ...end, confirmed: false });
    pending = undefined;
  };
  for (const e of events) {
    const t = eventTime(e);
    if (e.type === 'promote') {
      if (open === undefined) pending = { start: t, epoch: num(e.epoch) ?? 0 };
      continue;
    }
    if (e.type === 'promotionFailed') {
      pushUnconfirmed({ endEarliest: t, endLatest: t, endCause: 'failed' });
      continue;
    }
    if (e.type !== 'roleChanged') continue;
    const from = str(e.from);
    const to = str(e.to);
    const epoch = num(e.epoch) ?? 0;
    if (from !== role) {
      violations.push({ kind: 'inconsistent-history', message: `${key}: roleChanged ${from} -> ${to} while its role was ${role}`, process: key });
    }
    role = to ?? role;
    if (to === 'primary') {
      if (pending !== undefined && pending.epoch !== epoch) pushUnconfirmed({ endEarliest: t, endLatest: t, endCause: 'failed' });
      pending = undefined;
      if (open === undefined) open = { start: t, epoch, reason: str(e.reason) ?? '?' };
    } else {
      const reason = str(e.reason);
      const endCause: EndCause =
        reason === 'stepdown' ? 'stepdown' : reason === 'higher-epoch' ? 'demoted' : reason === 'shutdown' ? 'shutdown' : 'failed';
      if (open !== undefined) {
        intervals.push({ process: key, instanceId: rec.instanceId, ...open, endEarliest: t, endLatest: t, endCause, confirmed: true });
        open = undefined;
      }
      // A term that never announced itself, ended by a stop or a higher epoch while onPromote ran.
      pushUnconfirmed({ endEarliest: t, endLatest: t, endCause });
    }
  }
  if (open !== undefined) intervals.push({ process: key, instanceId: rec.instanceId, ...open, ...closeByDeath(), confirmed: true });
  if (pending !== undefined) pushUnconfirmed(closeByDeath());

  return { rec, faults, kill, readyAt, pauses, intervals, lastEventAt };
}
