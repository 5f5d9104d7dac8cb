/**
 * The cluster as seen from the wire, as a pure reducer: `reduce(view, input, now) -> view`.
 *
 * Inputs are what a passive SUB socket on the endpoint observes: decoded messages, dropped
 * (invalid) messages and connection changes. `now` is local monotonic time in ms; it is the only
 * time used for judgements (the age of a heartbeat, whether one came late). Wall-clock stamps
 * (`at`, ms since the Unix epoch) come with the inputs and are only carried into events for
 * people to read. A peer's `sentAt` is never used.
 *
 * What it derives:
 * - the primary: whoever last sent `instance.heartbeat` or `instance.promoted` (only the holder
 *   of the endpoint can publish on it); none after that node's `instance.shutdown`;
 * - `primaryChanged` (the Watcher's event name) after the first heartbeat or promotion of a
 *   primary or epoch other than the current one, naming the one before;
 * - gaps: a heartbeat arriving more than {@link LATE_FACTOR} times the sender's announced
 *   `heartbeatInterval` after its previous message (`late`), or a `seq` that skips numbers of the
 *   same process (`seq`);
 * - a stolen endpoint: a primary whose heartbeats say its filesystem socket file is no longer the
 *   one it bound (`endpointStolen`, reported once per sender until its heartbeats stop saying
 *   so). A watch that connected after the theft reaches whatever took the path, not the primary,
 *   and sees none of this: the primary's own `status()` and `/healthz` tell it there;
 * - for a lease backend (Redis), fed `lease` inputs (reads of the lease key): the leader, and a
 *   `primaryChanged` event when another node (or a new term) holds the lease, `primaryLost`
 *   when the lease is free; the names and fields of the Watcher's events of the same name;
 * - the primary's application metadata (PROTOCOL.md section 11; for a lease backend, as read with
 *   the lease): carried by `primaryChanged`, and `primaryMetadataChanged` when the same primary
 *   announces other metadata; metadata a receiver dropped (malformed) leaves the last one standing;
 * - counters, and `emitted`: the events the last input produced, for line and JSON renderers.
 *
 * No I/O, no timers, no `Date.now()`.
 *
 * @module
 */
import type { DecodeResult, RejectReason, Topic, WireMessage } from '../../protocol/messages.js';
import { REJECT_REASONS } from '../../protocol/messages.js';
import { NO_METADATA, sameMetadata, type Metadata } from '../../protocol/metadata.js';

/** A heartbeat later than this many announced intervals after the sender's previous message is a gap. */
export const LATE_FACTOR = 1.5;

/** How many events {@link ClusterView.recent} keeps. */
export const RECENT_EVENTS = 8;

/** One publisher seen on the endpoint. */
export interface SenderView {
  readonly instanceId: string;
  readonly epoch: number;
  readonly seq: number;
  readonly pid: number;
  readonly host: string;
  /** As announced in its last message that carried one. */
  readonly heartbeatInterval: number | undefined;
  readonly priority: number | undefined;
  /** The secondaries its last heartbeat listed, when it listed them. */
  readonly members: ReadonlyArray<{ readonly instanceId: string; readonly priority: number }> | undefined;
  readonly lastTopic: Topic;
  /** Local wall-clock ms of its last message. */
  readonly lastAt: number;
  /** Local monotonic ms of its last message: ages and lateness are measured from here. */
  readonly lastSeenNow: number;
  readonly heartbeats: number;
  /** What its last heartbeat said it found at its endpoint's path instead of its socket file, if anything. */
  readonly endpointStolen: string | undefined;
  /** Its application metadata as last announced (`{}` when none); undefined before it announced. */
  readonly metadata: Metadata | undefined;
}

/** Fields every message event carries. */
interface MessageFields {
  readonly instanceId: string;
  readonly epoch: number;
  readonly seq: number;
  readonly pid: number;
  readonly host: string;
  /** Local receive time, ms since the Unix epoch. */
  readonly at: number;
}

/** Fields of a lease backend's events: no sequence, pid or host; `epoch` is the lease's revision. */
interface LeaseFields {
  readonly instanceId: string;
  readonly epoch: number;
  readonly seq: null;
  readonly pid: null;
  readonly host: null;
  /** Local time of the read, ms since the Unix epoch. */
  readonly at: number;
}

/** What the view reports, one per thing that happened; the JSON renderer prints these as they are. */
export type ClusterEvent =
  | (MessageFields & {
      readonly event: 'heartbeat';
      readonly heartbeatInterval: number | null;
      readonly members: ReadonlyArray<{ readonly instanceId: string; readonly priority: number }> | null;
      /** Only while the sender says its socket file was taken: what it found (`gone`, `replaced`). */
      readonly endpointStolen?: string;
    })
  | (MessageFields & {
      readonly event: 'endpointStolen';
      /**
       * What the primary found at its endpoint's path instead of the socket file it bound: `gone`
       * or `replaced`. Nodes connecting from now on reach whatever is there, not this primary.
       */
      readonly found: string;
    })
  | (MessageFields & { readonly event: 'promoted'; readonly heartbeatInterval: number | null })
  | (MessageFields & { readonly event: 'shutdown' })
  | (MessageFields & {
      readonly event: 'gap';
      readonly kind: 'late';
      /** Time since the sender's previous message, local monotonic, rounded to the ms. */
      readonly silentMs: number;
      /** The sender's announced heartbeat interval. */
      readonly heartbeatInterval: number;
    })
  | (MessageFields & {
      readonly event: 'gap';
      readonly kind: 'seq';
      readonly expectedSeq: number;
      /** How many sequence numbers were skipped. */
      readonly missed: number;
    })
  | (MessageFields & {
      /**
       * The primary heard is another node, or the same node in a new epoch (the Watcher's
       * `primaryChanged`): after its first heartbeat or promotion of that epoch.
       */
      readonly event: 'primaryChanged';
      /** The previous primary (or the one that shut down last), null when none was heard. */
      readonly previous: string | null;
      /** Lease backends only. */
      readonly ttlMs: null;
      /** Its application metadata; `{}` when none. */
      readonly metadata: Metadata;
    })
  | (MessageFields & {
      /** The primary (same instanceId and epoch) announced other metadata. */
      readonly event: 'primaryMetadataChanged';
      readonly metadata: Metadata;
    })
  | (LeaseFields & {
      /** A lease backend's lease is held by another node or for a new term (the Watcher's `primaryChanged`). */
      readonly event: 'primaryChanged';
      /** The previous holder, null when the lease was free or nobody was seen yet. */
      readonly previous: string | null;
      /** The lease's remaining lifetime at the read, ms; null for a lock held as long as its session (PostgreSQL). */
      readonly ttlMs: number | null;
      /** Its application metadata as read with the lease; `{}` when none or unreadable. */
      readonly metadata: Metadata;
    })
  /** A lease backend's holder (same node and revision) stores other metadata. */
  | (LeaseFields & { readonly event: 'primaryMetadataChanged'; readonly metadata: Metadata })
  /** A lease backend's lease is free (released or expired): no primary; `instanceId` the holder seen last. */
  | (LeaseFields & { readonly event: 'primaryLost' })
  | {
      readonly event: 'dropped';
      readonly instanceId: null;
      readonly epoch: null;
      readonly seq: null;
      readonly pid: null;
      readonly host: null;
      readonly at: number;
      readonly reason: RejectReason;
      readonly detail: string;
      /** Dropped so far, this one included. */
      readonly dropped: number;
    };

/** The `event` names of {@link ClusterEvent}. */
export type ClusterEventName = ClusterEvent['event'];

/** Connection of the observing SUB socket to the endpoint. */
export type Connection = 'connecting' | 'connected' | 'disconnected';

/** The whole view. Plain data; treat as immutable. */
export interface ClusterView {
  readonly endpoint: string;
  readonly connection: Connection;
  /** The current primary's id (a key of `senders`), undefined when none is known. */
  readonly primary: string | undefined;
  /** The last `instance.shutdown` seen, if the primary left and nobody has announced since. */
  readonly lastShutdown: { readonly instanceId: string; readonly epoch: number; readonly seenNow: number } | undefined;
  readonly senders: Readonly<Record<string, SenderView>>;
  readonly counts: {
    readonly heartbeats: number;
    readonly promoted: number;
    readonly shutdowns: number;
    readonly gaps: number;
  };
  /** Invalid messages dropped, in all and by reason. */
  readonly dropped: { readonly total: number } & Readonly<Record<RejectReason, number>>;
  /** The last {@link RECENT_EVENTS} events, oldest first. */
  readonly recent: readonly ClusterEvent[];
  /** The events the last input produced (empty for inputs that produce none). */
  readonly emitted: readonly ClusterEvent[];
  /** Local monotonic ms the view was created: the observation started. */
  readonly startedNow: number;
  /** Lease backends: the lease as last read (undefined: free, or not read yet), and when. */
  readonly lease: LeaseHolder | undefined;
  /** Lease backends: the holder seen last before the lease became free. */
  readonly lastLeaseHolder: LeaseHolder | undefined;
}

/** A lease holder as read from a lease backend. */
export interface LeaseHolder {
  readonly nodeId: string;
  readonly revision: number;
  readonly priority: number | null;
  /** Remaining lifetime at the read, ms; null when the role has no lease (PostgreSQL's lock). */
  readonly ttlMs: number | null;
  /** Local monotonic ms of the read. */
  readonly seenNow: number;
  /** Local wall-clock ms of the first read that showed this holder and revision. */
  readonly sinceAt: number;
  /** Its application metadata as last read validly (`{}` when none). */
  readonly metadata: Metadata;
}

/** What the view is fed. `at` is local wall-clock ms (ms since the Unix epoch). */
export type ViewInput =
  | { readonly type: 'message'; readonly message: WireMessage; readonly at: number }
  | { readonly type: 'dropped'; readonly reason: RejectReason; readonly detail: string; readonly at: number }
  | { readonly type: 'connection'; readonly state: 'connected' | 'disconnected'; readonly at: number }
  /** A read of a lease backend's lease: its holder, or undefined when it is free. */
  | {
      readonly type: 'lease';
      readonly leader:
        | {
            readonly nodeId: string;
            readonly revision: number;
            readonly priority: number | null;
            /** Null for a lock held as long as its session (PostgreSQL). */
            readonly ttlMs: number | null;
            /** Its metadata: `{}` when none, null when what is stored breaks the rules (dropped). */
            readonly metadata?: Metadata | null;
          }
        | undefined;
      readonly at: number;
    };

/** The view before anything was observed. */
export function initialView(endpoint: string, now: number): ClusterView {
  return {
    endpoint,
    connection: 'connecting',
    primary: undefined,
    lastShutdown: undefined,
    senders: {},
    counts: { heartbeats: 0, promoted: 0, shutdowns: 0, gaps: 0 },
    dropped: { total: 0, ...(Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>) },
    recent: [],
    emitted: [],
    startedNow: now,
    lease: undefined,
    lastLeaseHolder: undefined,
  };
}

/** The input for one decode result. */
export function inputFromDecode(result: DecodeResult, at: number): ViewInput {
  return result.ok
    ? { type: 'message', message: result.message, at }
    : { type: 'dropped', reason: result.reason, detail: result.detail, at };
}

/** Applies one input. Pure: same arguments, same result. */
export function reduce(view: ClusterView, input: ViewInput, now: number): ClusterView {
  switch (input.type) {
    case 'connection':
      return { ...view, connection: input.state, emitted: [] };
    case 'dropped': {
      const dropped = { ...view.dropped, total: view.dropped.total + 1, [input.reason]: view.dropped[input.reason] + 1 };
      const event: ClusterEvent = {
        event: 'dropped',
        instanceId: null,
        epoch: null,
        seq: null,
        pid: null,
        host: null,
        at: input.at,
        reason: input.reason,
        detail: input.detail,
        dropped: dropped.total,
      };
      return withEvents({ ...view, dropped }, [event]);
    }
    case 'message':
      return onMessage(view, input.message, input.at, now);
    case 'lease':
      return onLease(view, input.leader, input.at, now);
  }
}

function onLease(view: ClusterView, leader: Extract<ViewInput, { type: 'lease' }>['leader'], at: number, now: number): ClusterView {
  const held = view.lease;
  if (leader === undefined) {
    if (held === undefined) return { ...view, emitted: [] };
    const event: ClusterEvent = { event: 'primaryLost', instanceId: held.nodeId, epoch: held.revision, seq: null, pid: null, host: null, at };
    return withEvents({ ...view, lease: undefined, lastLeaseHolder: held, primary: undefined }, [event]);
  }
  const same = held !== undefined && held.nodeId === leader.nodeId && held.revision === leader.revision;
  // Dropped (null) or unread metadata is no news: the last valid read of this term stands.
  const metadata = leader.metadata ?? (same ? held.metadata : NO_METADATA);
  const lease: LeaseHolder = {
    nodeId: leader.nodeId,
    revision: leader.revision,
    priority: leader.priority,
    ttlMs: leader.ttlMs,
    seenNow: now,
    sinceAt: same ? held.sinceAt : at,
    metadata,
  };
  if (same) {
    if (sameMetadata(held.metadata, metadata)) return { ...view, lease, emitted: [] };
    const changed: ClusterEvent = { event: 'primaryMetadataChanged', instanceId: leader.nodeId, epoch: leader.revision, seq: null, pid: null, host: null, at, metadata };
    return withEvents({ ...view, lease }, [changed]);
  }
  const previous = held ?? view.lastLeaseHolder;
  const event: ClusterEvent = {
    event: 'primaryChanged',
    instanceId: leader.nodeId,
    epoch: leader.revision,
    seq: null,
    pid: null,
    host: null,
    at,
    previous: previous?.nodeId ?? null,
    ttlMs: leader.ttlMs,
    metadata,
  };
  return withEvents({ ...view, lease, primary: undefined }, [event]);
}

function onMessage(view: ClusterView, m: WireMessage, at: number, now: number): ClusterView {
  const fields: MessageFields = { instanceId: m.instanceId, epoch: m.epoch, seq: m.seq, pid: m.pid, host: m.host, at };
  const previous = view.senders[m.instanceId];
  // Only the same process continues a sequence; a new pid is a restart, not a gap.
  const same = previous !== undefined && previous.pid === m.pid && previous.host === m.host;
  const events: ClusterEvent[] = [];

  if (same && m.seq > previous.seq + 1) {
    events.push({ event: 'gap', ...fields, kind: 'seq', expectedSeq: previous.seq + 1, missed: m.seq - previous.seq - 1 });
  }
  const interval = m.heartbeatInterval ?? previous?.heartbeatInterval;
  // A sender that said goodbye starts afresh: its next message after a pause is not late.
  const continuing = same && previous.lastTopic !== 'instance.shutdown';
  if (m.topic === 'instance.heartbeat' && continuing && interval !== undefined) {
    const silentMs = now - previous.lastSeenNow;
    if (silentMs > LATE_FACTOR * interval) {
      events.push({ event: 'gap', ...fields, kind: 'late', silentMs: Math.round(silentMs), heartbeatInterval: interval });
    }
  }

  const members = m.members?.map(([instanceId, priority]) => ({ instanceId, priority }));
  // A heartbeat says whether the socket file is still the sender's; other topics do not.
  const endpointStolen = m.topic === 'instance.heartbeat' ? m.endpointStolen : same ? previous.endpointStolen : undefined;
  // A primary's announcement carries its metadata (absent: none); dropped metadata leaves the last standing.
  const announcesMetadata = (m.topic === 'instance.heartbeat' || m.topic === 'instance.promoted') && m.metadataRejected === undefined;
  const metadata = announcesMetadata ? (m.metadata ?? NO_METADATA) : same ? previous.metadata : undefined;
  const sender: SenderView = {
    instanceId: m.instanceId,
    epoch: m.epoch,
    seq: m.seq,
    pid: m.pid,
    host: m.host,
    heartbeatInterval: interval,
    priority: m.priority ?? previous?.priority,
    members: m.topic === 'instance.heartbeat' ? members : previous?.members,
    lastTopic: m.topic,
    lastAt: at,
    lastSeenNow: now,
    heartbeats: (same ? previous.heartbeats : 0) + (m.topic === 'instance.heartbeat' ? 1 : 0),
    endpointStolen,
    metadata,
  };

  let { primary, lastShutdown } = view;
  const before = primary === undefined ? undefined : view.senders[primary];
  const previousPrimary = before?.instanceId ?? lastShutdown?.instanceId ?? null;
  const announces = m.topic === 'instance.heartbeat' || m.topic === 'instance.promoted';
  const changed = announces && (before === undefined || before.instanceId !== m.instanceId || before.epoch !== m.epoch);
  const counts = { ...view.counts, gaps: view.counts.gaps + events.length };
  switch (m.topic) {
    case 'instance.heartbeat':
      events.push({
        event: 'heartbeat',
        ...fields,
        heartbeatInterval: m.heartbeatInterval ?? null,
        members: members ?? null,
        ...(endpointStolen === undefined ? {} : { endpointStolen }),
      });
      if (endpointStolen !== undefined && !(same && previous.endpointStolen !== undefined)) {
        events.push({ event: 'endpointStolen', ...fields, found: endpointStolen });
      }
      counts.heartbeats++;
      primary = m.instanceId;
      lastShutdown = undefined;
      break;
    case 'instance.promoted':
      events.push({ event: 'promoted', ...fields, heartbeatInterval: m.heartbeatInterval ?? null });
      counts.promoted++;
      primary = m.instanceId;
      lastShutdown = undefined;
      break;
    case 'instance.shutdown':
      events.push({ event: 'shutdown', ...fields });
      counts.shutdowns++;
      if (primary === m.instanceId || primary === undefined) {
        primary = undefined;
        lastShutdown = { instanceId: m.instanceId, epoch: m.epoch, seenNow: now };
      }
      break;
  }
  if (changed) {
    events.push({ event: 'primaryChanged', ...fields, previous: previousPrimary, ttlMs: null, metadata: metadata ?? NO_METADATA });
  } else if (announces && before?.metadata !== undefined && metadata !== undefined && !sameMetadata(before.metadata, metadata)) {
    events.push({ event: 'primaryMetadataChanged', ...fields, metadata });
  }
  return withEvents(
    { ...view, primary, lastShutdown, counts, senders: { ...view.senders, [m.instanceId]: sender } },
    events,
  );
}

function withEvents(view: ClusterView, events: readonly ClusterEvent[]): ClusterView {
  const recent = events.length === 0 ? view.recent : [...view.recent, ...events].slice(-RECENT_EVENTS);
  return { ...view, recent, emitted: events };
}

/** The current primary's record, if any. */
export function primaryOf(view: ClusterView): SenderView | undefined {
  return view.primary === undefined ? undefined : view.senders[view.primary];
}

/** Ms since the sender's last message, at local monotonic `now`. */
export function ageOf(sender: SenderView, now: number): number {
  return Math.max(0, now - sender.lastSeenNow);
}

/** True when the sender has been silent longer than {@link LATE_FACTOR} announced intervals. */
export function isOverdue(sender: SenderView, now: number): boolean {
  return sender.heartbeatInterval !== undefined && ageOf(sender, now) > LATE_FACTOR * sender.heartbeatInterval;
}
