/**
 * What a chaos run records, and all the checker gets to see: every watcher process (one record
 * per incarnation) with the events it reported, how and when it exited, and every fault the
 * injector applied, stamped just before and just after the action.
 *
 * All times are wall-clock milliseconds with sub-millisecond precision taken as
 * the run's one host clock (`hostNow` in harness/child-runtime.ts), in the injector and in every watcher process
 * alike, so they share one clock (up to its resolution).
 *
 * @module
 */

/** One event a watcher process reported (see harness/watcher-node.ts): `{ type, at, ...data }`. */
export interface HistoryEvent {
  readonly type: string;
  /** When the child sent it. For `roleChanged`, `changedAt` is when the role changed. */
  readonly at: number;
  readonly [key: string]: unknown;
}

/** How a process ended, as the injector observed it. */
export interface ExitRecord {
  readonly code: number | null;
  readonly signal: string | null;
  /** When the injector saw the exit: an upper bound of the moment of death. */
  readonly observedAt: number;
}

/** One incarnation of a watcher process. */
export interface ProcessRecord {
  /** Unique per incarnation, e.g. `n3#2`. */
  readonly key: string;
  readonly instanceId: string;
  readonly pid: number;
  readonly spawnedAt: number;
  /** Whether failover was enabled when it started. */
  readonly enabled: boolean;
  readonly priority?: number;
  readonly events: readonly HistoryEvent[];
  /** Absent while it was still alive when the record was taken. */
  readonly exit?: ExitRecord;
  /** The end of its stderr, for diagnosing a crash. */
  readonly stderrTail?: string;
}

/** What the injector did. */
export type FaultKind =
  | 'kill'
  | 'stop'
  | 'cont'
  | 'shutdown'
  | 'setEnabled'
  | 'stepDown'
  | 'block'
  | 'restart'
  /** The lease backends' server (target `server`): paused (SIGSTOP), continued, restarted. */
  | 'serverStop'
  | 'serverCont'
  | 'serverRestart';

export interface Fault {
  readonly kind: FaultKind;
  /** The `key` of the process it was applied to. */
  readonly target: string;
  /** Just before the action (before the signal was sent or the command written). */
  readonly at: number;
  /** Just after the action returned. For a SIGKILL: an upper bound of the moment of death. */
  readonly doneAt: number;
  /** For `setEnabled`. */
  readonly value?: boolean;
  /** For `block`: how long the event loop is kept busy. */
  readonly ms?: number;
  /** Teardown at the end of the run: explains exits, not part of the experiment. */
  readonly final?: boolean;
  /** Free text: `primary`, `random`, `shutdown-timeout`, ... */
  readonly note?: string;
}

export interface History {
  readonly seed?: number;
  /** When the injection began (every initial node was ready and one was primary). */
  readonly startedAt: number;
  /** The end of observation: after the settle period, before the teardown kills. */
  readonly endedAt: number;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  readonly processes: readonly ProcessRecord[];
  /** In the order applied. */
  readonly faults: readonly Fault[];
  /**
   * Times the injector's own event loop woke late (a measure of how loaded the machine was):
   * `at` when it noticed, `ms` how late. For diagnosis only.
   */
  readonly injectorStalls?: ReadonlyArray<{ readonly at: number; readonly ms: number }>;
}
