/**
 * Wire messages of the ZeroMQ watcher. `docs/PROTOCOL.md` is the contract; this file is its
 * TypeScript mirror. Every message is a two-frame multipart `[topic, msgpack(payload)]`.
 *
 * @module
 */
import type { Metadata } from './metadata.js';

/** The protocol version this build speaks and accepts. */
export const PROTOCOL_VERSION = 1;

/** Topics, sent as the first frame in UTF-8. Secondaries subscribe to the prefix `instance.`. */
export const TOPICS = ['instance.heartbeat', 'instance.shutdown', 'instance.promoted'] as const;

/** One of {@link TOPICS}. */
export type Topic = (typeof TOPICS)[number];

/** The common subscription prefix of every topic. */
export const TOPIC_PREFIX = 'instance.';

/** Largest accepted payload frame, in bytes. Larger frames are dropped unread. */
export const MAX_PAYLOAD_BYTES = 4096;

/** Largest accepted topic frame, in bytes. */
export const MAX_TOPIC_BYTES = 64;

/** Longest accepted `instanceId` and `host`, in UTF-16 code units. */
export const MAX_ID_LENGTH = 256;

/**
 * Longest `instanceId` a node may have, in bytes of UTF-8 (the `instanceId` option's rule): its
 * presence topic, `presence.` + at most 10 digits + `.` + the id, is then at most 276 bytes,
 * within the 299 bytes the primary reads ({@link MAX_PRESENCE_TOPIC_BYTES}); and it is at most
 * {@link MAX_ID_LENGTH} UTF-16 code units, what receivers accept.
 */
export const MAX_INSTANCE_ID_BYTES = 256;

/** Longest subscription the primary reads as presence or a probe, in bytes (PROTOCOL.md section 5). */
export const MAX_PRESENCE_TOPIC_BYTES = 299;

/** Fields carried by every payload. */
export interface Payload {
  /** Protocol version; {@link PROTOCOL_VERSION}. */
  readonly version: number;
  /** The sender's instance id. */
  readonly instanceId: string;
  /** The sender's epoch: the term it is primary for. */
  readonly epoch: number;
  /** Per-sender sequence number, +1 on every message the sender publishes. */
  readonly seq: number;
  /** Sender's wall clock, ms since the Unix epoch. Informational: never used for decisions. */
  readonly sentAt: number;
  /** The sender's process id. */
  readonly pid: number;
  /** The sender's host name. */
  readonly host: string;
  /** The sender's heartbeat interval in ms, when it announces it. */
  readonly heartbeatInterval?: number | undefined;
  /** The sender's priority (lower is preferred), when it announces it. */
  readonly priority?: number | undefined;
  /** The sender's process start time (Linux clock ticks since boot): with pid and host, its identity for fencing. */
  readonly procStart?: number | undefined;
  /**
   * On a primary's heartbeat: the secondaries connected to it, as `[instanceId, priority]`
   * pairs (at most {@link MAX_MEMBERS}).
   */
  readonly members?: ReadonlyArray<readonly [string, number]> | undefined;
  /**
   * On a primary's heartbeat, only while the socket file of its filesystem endpoint is no longer
   * the one it bound: what it found at the path (`gone` or `replaced`; receivers accept any
   * string of 1-{@link MAX_THEFT_LENGTH} characters and show it as is). See PROTOCOL.md 4.2.
   */
  readonly endpointStolen?: string | undefined;
  /**
   * On a primary's heartbeats and `instance.promoted`: the application's metadata (PROTOCOL.md
   * section 11), left out when empty. Limits in `metadata.ts`.
   */
  readonly metadata?: Metadata | undefined;
}

/** Longest accepted `endpointStolen` value, in UTF-16 code units. */
export const MAX_THEFT_LENGTH = 64;

/** Most members a heartbeat lists. */
export const MAX_MEMBERS = 64;

/**
 * Prefix of the presence subscription each node's SUB socket adds besides `instance.`:
 * `presence.<priority>.<instanceId>`. Nothing is ever published on it; the primary's XPUB socket
 * sees the subscription when a node connects and the unsubscription when it goes.
 */
export const PRESENCE_PREFIX = 'presence.';

/** Prefix of liveness-probe subscriptions: a live primary answers `probe.<nonce>` with an immediate heartbeat. */
export const PROBE_PREFIX = 'probe.';

/** The presence topic of a node. */
export function presenceTopic(instanceId: string, priority: number): string {
  return `${PRESENCE_PREFIX}${priority}.${instanceId}`;
}

/** Parses a presence topic; undefined when it is not one. */
export function parsePresence(topic: string): { instanceId: string; priority: number } | undefined {
  const m = /^presence\.(\d{1,10})\.(.{1,256})$/s.exec(topic);
  if (m === null) return undefined;
  const priority = Number(m[1]);
  if (!Number.isSafeInteger(priority)) return undefined;
  return { instanceId: m[2] as string, priority };
}

/** A decoded, validated message. */
export interface WireMessage extends Payload {
  readonly topic: Topic;
  /**
   * Set when the payload carried a `metadata` field that breaks its rules: why it was dropped.
   * The message itself is valid (`metadata` is then undefined); receivers count it in
   * `status().dropped.metadata`.
   */
  readonly metadataRejected?: string | undefined;
}

/** Why an incoming message was dropped; each reason is counted in `status().dropped`. */
export type RejectReason =
  /** Not exactly two frames. */
  | 'frames'
  /** Topic frame is not one of {@link TOPICS}. */
  | 'topic'
  /** A frame exceeds its size limit. */
  | 'oversize'
  /** Payload is not a single valid msgpack value. */
  | 'msgpack'
  /** Payload is valid msgpack but not a map with the required fields of the right types. */
  | 'shape'
  /** Payload's `version` is not one this build speaks. */
  | 'version';

/** All reject reasons, for counters. */
export const REJECT_REASONS: readonly RejectReason[] = [
  'frames',
  'topic',
  'oversize',
  'msgpack',
  'shape',
  'version',
];

/** The result of decoding: a message, or a counted rejection. Never throws. */
export type DecodeResult =
  | { readonly ok: true; readonly message: WireMessage }
  | { readonly ok: false; readonly reason: RejectReason; readonly detail: string };
