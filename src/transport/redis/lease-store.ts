/**
 * The lease store port: the narrow interface the Redis election driver sees. The real version
 * is `redis-lease-store.ts` (ioredis + Lua scripts); a test may pass another.
 *
 * @module
 */
import type { LeaseRoleChangeReason, Notice, OpReply } from '../../core/lease-machine.js';
import type { Metadata } from '../../protocol/metadata.js';

/** A node currently registered as live. */
export interface LiveNode {
  readonly nodeId: string;
  readonly priority: number;
  readonly isLeader: boolean;
  /** Server time (ms since the Unix epoch) of its last lease operation. */
  readonly lastSeen: number;
  /** Whether it currently runs for leader (false while it holds off after a failed onStart). */
  readonly eligible: boolean;
  /** Its application metadata, when the store carries metadata (`{}` when it announces none). */
  readonly metadata?: Metadata | undefined;
}

/**
 * A node's metadata as read from the store: the map, `undefined` when it announces none, or
 * `'invalid'` when what is stored breaks the metadata rules (dropped and counted by the reader).
 */
export type StoredMetadata = Metadata | undefined | 'invalid';

/** What a leadership event records. */
export type LeadershipAction = 'elected' | 'released' | 'expired';

/** A recorded leadership event (newest first in `events()`). */
export interface LeadershipEvent {
  readonly nodeId: string;
  readonly action: LeadershipAction;
  /** Server time, ms since the Unix epoch. */
  readonly timestamp: number;
  readonly revision: number;
  /**
   * For `elected`: how the lease was found (`vacant`, `released`, `expired`, `self`); for
   * `released`: why it was given up (`shutdown`, `preempted`, `start-failed`, `drift`); for
   * `expired`: `lease-expired`.
   */
  readonly reason: string | undefined;
}

/** What every lease operation sends besides the node's identity. */
export interface OpArgs {
  readonly eligible: boolean;
  readonly knownRevision: number;
}

export type ReleaseReason =
  | Exclude<LeaseRoleChangeReason, 'startup' | 'vacant' | 'handover' | 'expired' | 'reacquired'>
  /** A lease granted with a revision that is not a valid one (not a safe integer): given back unused. */
  | 'revision-exhausted';

/** Callbacks of a store's connection. */
export interface LeaseStoreHandlers {
  /** A pub/sub notice from any node of the project. */
  onNotice(notice: Notice): void;
  /** The command connection is ready (first time or after a reconnect). */
  onConnected(): void;
  /** The command connection reported an error or closed (for logs). */
  onConnectionLost(detail: string): void;
  /** A node announced new metadata (a `metadata` notice on the channel). */
  onMetadataNotice?(nodeId: string): void;
}

export interface LeaseStore {
  /** Starts connecting (command connection and subscription); resolves at once. */
  open(handlers: LeaseStoreHandlers): void;
  acquire(args: OpArgs): Promise<OpReply>;
  refresh(args: OpArgs): Promise<OpReply>;
  observe(args: OpArgs): Promise<OpReply>;
  /**
   * Releases the lease if still ours and, when `revision` is given, still the term with that
   * revision (a release for an ended term leaves a later term of this node alone); with
   * `deregister`, removes this node's registration. Runs after every operation sent before it.
   */
  release(reason: ReleaseReason, deregister: boolean, revision?: number): Promise<boolean>;
  liveNodes(): Promise<LiveNode[]>;
  /** The newest `limit` events, newest first. */
  events(limit: number): Promise<LeadershipEvent[]>;
  /** Closes every connection (bounded); never rejects. */
  close(): Promise<void>;
  /**
   * Optional (a store without it carries no metadata): stores this node's application metadata
   * (an empty map removes it) and announces the change on the channel.
   */
  writeMetadata?(metadata: Metadata): Promise<void>;
  /** Optional: the stored metadata of each of `nodeIds`, in that order. */
  readMetadata?(nodeIds: readonly string[]): Promise<StoredMetadata[]>;
}
