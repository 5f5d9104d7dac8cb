/**
 * The election contract: what every backend of failover-watch is, whatever keeps the role
 * exclusive underneath (ZeroMQ on one host; Redis, etcd or PostgreSQL across hosts). An
 * application or the CLI switches backends by configuration and codes against this interface
 * alone; docs/ELECTION.md describes the contract in prose.
 *
 * One vocabulary everywhere:
 * - a node is `primary` (it holds the role) or `secondary`; `starting` before its first settled
 *   role and `stopped` after `shutdown()`;
 * - the `epoch` is the fencing token: it grows at every new term, is an integer from 1 to
 *   2^53 - 1, and is what `onPromote` receives to hand to storage that can reject older terms;
 * - `instanceId` names the node, unique in its cluster.
 *
 * Types only: this module loads nothing at run time, so every layer may import it.
 *
 * @module
 */
import type { EventEmitter } from 'eventemitter3';

/** What `health()` returns; `GET /healthz` answers `status` with the reason. */
export interface Health {
  /** True while the node is healthy in its role. */
  readonly ok: boolean;
  /** The HTTP status `/healthz` answers: 200 when `ok`, 503 otherwise. */
  readonly status: 200 | 503;
  /** Why, for people: e.g. `following a`, `primary lost`, `own heartbeat 812 ms old (limit 450 ms)`. */
  readonly reason: string;
}

/** The backends this package ships. */
export type BackendKind = 'zmq' | 'redis' | 'etcd' | 'postgres';

/** A node's role. */
export type ElectionRole = 'starting' | 'secondary' | 'primary' | 'stopped';

/**
 * Why a node became primary. Every backend uses `startup` (it found the role free when it
 * started) and its own finer causes: ZeroMQ `shutdown`, `silence`, `disconnect`; the lease
 * backends `vacant`, `handover`, `expired`, `reacquired`.
 */
export type ElectionPromoteReason = string;

/**
 * Why a node stopped being primary. Shared: `shutdown` (its own `shutdown()`), `stepdown` (its
 * own `stepDown()`), `lost` (the role was taken from it or could no longer be confirmed), plus the
 * backend's finer causes (ZeroMQ `higher-epoch`; the lease backends `preempted`, `drift`,
 * `failed-start`, ...).
 */
export type ElectionDemoteReason = string;

/** Handed to `onPromote`. */
export interface ElectionPromoteContext {
  /** The new term's epoch: the fencing token. */
  readonly epoch: number;
  readonly reason: ElectionPromoteReason;
  /** Aborts as soon as the role is lost (`shutdown()`, `stepDown()`, the role taken or unconfirmable). */
  readonly signal: AbortSignal;
}

/** Handed to `onDemote`. */
export interface ElectionDemoteContext {
  /** The epoch of the term that ended. */
  readonly epoch: number;
  readonly reason: ElectionDemoteReason;
}

/** The callbacks every backend takes in its options. */
export interface ElectionCallbacks {
  /**
   * Called when this node becomes primary, before it acts as one. Resolve when the node is ready
   * to serve; a throw or rejection means it did not take the role (the backend reports
   * `promotionFailed` and retries later).
   */
  readonly onPromote?: (context: ElectionPromoteContext) => void | Promise<void>;
  /** Called once per settled `onPromote`, after the role ended; bounded by the backend's budget. */
  readonly onDemote?: (context: ElectionDemoteContext) => void | Promise<void>;
}

/** A role transition, as delivered by `roleChanged` and `roleChanges()`. */
export interface ElectionRoleChange {
  readonly from: ElectionRole;
  readonly to: ElectionRole;
  /** The epoch of the term begun (to primary) or ended (from primary). */
  readonly epoch: number;
  readonly reason: ElectionPromoteReason | ElectionDemoteReason;
  /** When the role changed: ms since the Unix epoch. */
  readonly at: number;
  /** This node's id. */
  readonly instanceId: string;
}

/** A secondary started following a (new) primary, or the same primary in a new term. */
export interface ElectionPrimaryChangedEvent {
  readonly instanceId: string;
  readonly epoch: number;
  /** Its priority when the backend knows it (lower is preferred). */
  readonly priority?: number | undefined;
  /** Its process id and host when the backend carries them (ZeroMQ does). */
  readonly pid?: number | undefined;
  readonly host?: string | undefined;
  readonly at: number;
  /**
   * The application metadata the primary announces (the `metadata` option: a small map of
   * strings, e.g. `{ port: '7001' }`); `{}` when it announces none, undefined when the backend
   * does not carry metadata.
   */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

/**
 * The primary followed (same instanceId and epoch) announced other metadata: a backend that
 * carries metadata emits it as `primaryMetadataChanged`.
 */
export interface ElectionPrimaryMetadataChangedEvent {
  readonly instanceId: string;
  readonly epoch: number;
  /** The metadata now announced; `{}` when none. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly at: number;
}

/** A secondary considers the primary gone. */
export interface ElectionPrimaryLostEvent {
  readonly instanceId: string | undefined;
  readonly epoch: number | undefined;
  /** What showed it, in the backend's words (ZeroMQ `silence`, `shutdown`, `disconnect`; leases `released`, `expired`). */
  readonly cause: string;
  /** True only when this node tries to take over now. */
  readonly willPromote: boolean;
  /** What `willPromote` rests on: `taking-over`, `suspected`, `disabled`, `observer`, `epoch-exhausted`, ... */
  readonly reason: string;
  readonly at: number;
}

/** An `onPromote` (or the backend's own step of taking the role) failed; the node stays secondary. */
export interface ElectionPromotionFailedEvent {
  readonly epoch: number;
  readonly reason: ElectionPromoteReason;
  readonly error: string;
  readonly retryInMs: number;
  readonly at: number;
}

/** The events every backend emits. No event is called `error`: an election never throws at you. */
export interface ElectionEvents {
  roleChanged: (change: ElectionRoleChange) => void;
  primaryChanged: (event: ElectionPrimaryChangedEvent) => void;
  primaryLost: (event: ElectionPrimaryLostEvent) => void;
  promotionFailed: (event: ElectionPromotionFailedEvent) => void;
}

/** One node as `liveNodes()` lists it. */
export interface ElectionNode {
  readonly instanceId: string;
  readonly role: 'primary' | 'secondary';
  /** Its priority (lower is preferred); undefined when not known. */
  readonly priority: number | undefined;
  /** The primary's epoch; undefined for secondaries. */
  readonly epoch: number | undefined;
  /** Wall-clock ms when the backend last had news of it. */
  readonly lastSeenAt: number;
  /** True for the node you asked. */
  readonly self: boolean;
  /** Whether it can become primary (false for an observer, a disabled node, one holding off). */
  readonly eligible: boolean;
  /**
   * The application metadata it announces, when the backend carries it (the primary's always;
   * `{}` when none).
   */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

/** The core every backend's `status()` starts with; the backend's own section follows. */
export interface ElectionStatusCore {
  readonly backend: BackendKind;
  readonly instanceId: string;
  readonly role: ElectionRole;
  /** Finer than role, in the backend's words (e.g. `promoting`). */
  readonly phase: string;
  /** Own epoch while primary; otherwise the highest epoch known. */
  readonly epoch: number;
  /** Whether this node may become primary (`setEnabled`). */
  readonly enabled: boolean;
  /** The primary this node follows (itself when primary), when known. */
  readonly primary: { readonly instanceId: string; readonly epoch: number } | undefined;
  /** True while a secondary considers the primary lost and none is known. */
  readonly primarySuspected: boolean;
  readonly promotions: number;
  readonly demotions: number;
  readonly failedPromotions: number;
  /** Role changes dropped by slow `roleChanges()` consumers. */
  readonly notificationsDropped: number;
  /** Listener calls that threw or rejected. */
  readonly listenerErrors: number;
}

/**
 * An election. Every backend's handle implements it: the ZeroMQ `Watcher`, the Redis, etcd and
 * PostgreSQL elections.
 */
export interface Election<
  Status extends ElectionStatusCore = ElectionStatusCore,
  Events extends ElectionEvents = ElectionEvents,
> extends EventEmitter<Events> {
  readonly backend: BackendKind;
  readonly instanceId: string;
  readonly role: ElectionRole;
  /** Own epoch while primary; otherwise the highest epoch known. */
  readonly epoch: number;
  readonly enabled: boolean;
  /** Joins the election; resolves once the first role is settled. Rejects on bad configuration or a start timeout. */
  start(): Promise<void>;
  /** Leaves the election: a primary runs `onDemote` and hands over at once. Idempotent. */
  shutdown(): Promise<void>;
  /** Hands the primary role over gracefully and stays in the election as a secondary. No effect unless primary. */
  stepDown(): void;
  /** Switches failover on or off at runtime: a disabled node never becomes primary. */
  setEnabled(enabled: boolean): void;
  /** Role changes as a bounded async iterator; ends after the change to `stopped`. */
  roleChanges(): AsyncIterableIterator<ElectionRoleChange>;
  status(): Status;
  health(): Health;
  /** The nodes of the cluster as this node knows them. */
  liveNodes(): Promise<ElectionNode[]>;
  [Symbol.asyncDispose](): Promise<void>;
}
