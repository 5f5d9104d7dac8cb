/**
 * A cluster endpoint in memory, and the transport through which one node reaches it: what the
 * ZeroMQ transport does over a real socket (transport/zmq/zmq-transport.ts), with no socket.
 *
 * What it keeps of the real endpoint, because the one-primary guarantee rests on it:
 * - the bind is exclusive: one holder at a time; it is freed when the holder releases it, closes,
 *   or its process dies;
 * - every node (the holder too) subscribes with its own SUB side, which connects to whoever holds
 *   the endpoint, `reconnectDelay` ms after it became reachable (as libzmq reconnects);
 * - a connection reports the subscriber's presence topics to the holder (joined, and left when it
 *   ends) and then the subscription to the heartbeats (`onSubscribed`, which triggers the
 *   welcome); the subscriber hears `connected`, and `disconnected` when the connection ends;
 * - the holder's messages reach every subscriber connected to it, its own SUB included (but for
 *   the heartbeats, while that SUB does not read them: `hearOwnHeartbeats`), in the order sent,
 *   `latency` ms later; a farewell sent by `release()` arrives before the
 *   disconnect that follows it.
 *
 * And what a test adds: a node's publishes can be dropped (silence), nodes can be cut apart
 * (partition: no connection, and so no message, crosses), and a foreign primary can take the
 * endpoint (a peer of another implementation, or a process that ignored the path lock).
 *
 * Everything runs on the cluster's clock, through each node's {@link NodeClock}: deterministic.
 *
 * @module
 */
import type { Frames, BindOutcome, Transport, TransportHandlers } from '../transport/transport.js';
import type { FakeClock, TimerHandle } from '../runtime/clock.js';
import type { NodeClock } from './node-clock.js';

/** Whoever holds the endpoint: a node's transport, or a foreign primary. */
export interface Holder {
  /** The node the holder runs in (for partitions); undefined for a foreign primary. */
  readonly nodeId: string | undefined;
  /** A subscriber's topic was (un)subscribed on this holder's endpoint. */
  presence(joined: boolean, topic: string): void;
  /** A subscriber's subscription to the heartbeats is in force. */
  subscribed(): void;
}

/** Timing of the endpoint, in ms of test time. */
export interface MemoryEndpointTiming {
  /** From a message sent to its arrival. */
  readonly latency: number;
  /** From the endpoint becoming reachable (bound, a partition healed) to a subscriber's connection. */
  readonly reconnectDelay: number;
}

const HEARTBEAT_TOPIC = Buffer.from('instance.heartbeat');

export class MemoryEndpoint {
  readonly #clock: FakeClock;
  readonly #timing: MemoryEndpointTiming;
  #holder: Holder | undefined;
  readonly #subscribers = new Set<MemoryTransport>();
  /** Partition group of each node; nodes without one are in group 0. */
  #groups = new Map<string, number>();
  readonly #silenced = new Set<string>();
  /** Counts every action, so a driver can tell a quiet cluster from a busy one. */
  activity = 0;
  /** Connections and arrivals at foreign primaries under way on the cluster's clock. */
  readonly #timers = new Set<TimerHandle>();

  constructor(clock: FakeClock, timing: MemoryEndpointTiming) {
    this.#clock = clock;
    this.#timing = timing;
  }

  get holder(): Holder | undefined {
    return this.#holder;
  }

  /** A transport for the node `nodeId`, whose process runs on `clock`. */
  transport(nodeId: string, clock: NodeClock): MemoryTransport {
    return new MemoryTransport(this, nodeId, clock);
  }

  // --- faults -----------------------------------------------------------------------------------

  /** Drops (or no longer drops) what `nodeId` publishes. */
  silence(nodeId: string, on: boolean): void {
    this.activity++;
    if (on) this.#silenced.add(nodeId);
    else this.#silenced.delete(nodeId);
  }

  silenced(nodeId: string): boolean {
    return this.#silenced.has(nodeId);
  }

  /** Cuts the nodes into `groups` (nodes not named form one more group); none heals every cut. */
  partition(groups: ReadonlyArray<readonly string[]>): void {
    this.activity++;
    this.#groups = new Map();
    groups.forEach((group, i) => {
      for (const id of group) this.#groups.set(id, i + 1);
    });
    for (const s of this.#subscribers) {
      if (s.connectedTo !== undefined && !this.#reachable(s, s.connectedTo)) this.#disconnect(s);
      else this.#connectLater(s);
    }
  }

  /**
   * A foreign primary takes the endpoint: it becomes the holder, the present holder keeps
   * believing it holds it but reaches nobody any more, and every subscriber connects to the
   * foreign one (after a disconnect from the old).
   */
  seize(holder: Holder): void {
    this.activity++;
    this.#holder = holder;
    for (const s of this.#subscribers) {
      if (s.connectedTo !== undefined) this.#disconnect(s);
      else this.#connectLater(s);
    }
  }

  /** The foreign primary `holder` gives the endpoint up (with `farewell` first, if any). */
  vacate(holder: Holder, farewell: Frames | undefined): void {
    if (this.#holder !== holder) return;
    if (farewell !== undefined) this.send(holder, farewell);
    this.#free(holder);
  }

  // --- what transports call ---------------------------------------------------------------------

  /** @internal */
  open(t: MemoryTransport): void {
    this.activity++;
    this.#subscribers.add(t);
    this.#connectLater(t);
  }

  /** @internal */
  bind(t: MemoryTransport): BindOutcome {
    this.activity++;
    if (this.#holder === t) return { outcome: 'bound' };
    if (this.#holder !== undefined) return { outcome: 'in-use' };
    this.#holder = t;
    for (const s of this.#subscribers) this.#connectLater(s);
    return { outcome: 'bound' };
  }

  /** Sends `frames` from `holder` to every subscriber connected to it. @internal */
  send(holder: Holder, frames: Frames): void {
    this.activity++;
    if (this.#holder !== holder) return;
    if (holder.nodeId !== undefined && this.#silenced.has(holder.nodeId)) return;
    for (const s of this.#subscribers) if (s.connectedTo === holder) s.receive(frames, this.#timing.latency);
  }

  /** @internal */
  release(t: MemoryTransport, farewell: Frames | undefined): void {
    if (this.#holder !== t) return;
    if (farewell !== undefined) this.send(t, farewell);
    this.#free(t);
  }

  /** (Un)subscribes a subscriber's topic; the holder it is connected to hears it. @internal */
  subscription(t: MemoryTransport, topic: string, on: boolean): void {
    this.activity++;
    const holder = t.connectedTo;
    if (holder !== undefined) this.#toHolder(holder, () => holder.presence(on, topic));
  }

  /** The transport closed, or its process died (no farewell then). @internal */
  close(t: MemoryTransport): void {
    this.activity++;
    if (this.#holder === t) this.#free(t);
    this.#subscribers.delete(t);
    const holder = t.connectedTo;
    t.connectedTo = undefined;
    if (holder !== undefined) this.#left(t, holder);
  }

  // --- connections ------------------------------------------------------------------------------

  #free(holder: Holder): void {
    this.activity++;
    this.#holder = undefined;
    for (const s of this.#subscribers) if (s.connectedTo === holder) this.#disconnect(s);
  }

  #reachable(s: MemoryTransport, holder: Holder): boolean {
    if (holder.nodeId === undefined) return true;
    return (this.#groups.get(s.nodeId) ?? 0) === (this.#groups.get(holder.nodeId) ?? 0);
  }

  /** Connects `s` to the holder after `reconnectDelay`, if it is still reachable and unconnected then. */
  #connectLater(s: MemoryTransport): void {
    if (s.connectedTo !== undefined || s.connecting) return;
    const holder = this.#holder;
    if (holder === undefined || !this.#reachable(s, holder)) return;
    s.connecting = true;
    this.#later(() => {
      s.connecting = false;
      this.activity++;
      const now = this.#holder;
      if (!this.#subscribers.has(s) || s.connectedTo !== undefined || now === undefined || !this.#reachable(s, now)) return;
      s.connectedTo = now;
      // The holder reads the newcomer's presence, then its subscription to the heartbeats (the
      // ZeroMQ transport reports the latter one turn later, so the welcome lists the newcomer).
      for (const topic of s.topics) this.#toHolder(now, () => now.presence(true, topic));
      this.#toHolder(now, () => now.subscribed());
      s.event('connected', this.#timing.latency);
    }, this.#timing.reconnectDelay);
  }

  /** The connection of `s` ends: it hears `disconnected` (after what was sent before), the holder its topics leave. */
  #disconnect(s: MemoryTransport): void {
    const holder = s.connectedTo;
    if (holder === undefined) return;
    s.connectedTo = undefined;
    s.event('disconnected', this.#timing.latency);
    this.#left(s, holder);
    this.#connectLater(s);
  }

  #left(s: MemoryTransport, holder: Holder): void {
    for (const topic of s.topics) this.#toHolder(holder, () => holder.presence(false, topic));
  }

  #toHolder(holder: Holder, fn: () => void): void {
    if (holder instanceof MemoryTransport) holder.clock.arrive(fn, this.#timing.latency);
    else this.#later(fn, this.#timing.latency);
  }

  #later(fn: () => void, ms: number): void {
    const handle = this.#clock.setTimer(() => {
      this.#timers.delete(handle);
      fn();
    }, ms);
    this.#timers.add(handle);
  }

  /** Drops every connection under way: once every transport has closed, nothing of the endpoint is left on the clock. */
  dispose(): void {
    for (const handle of this.#timers) this.#clock.clearTimer(handle);
    this.#timers.clear();
    for (const s of this.#subscribers) s.connecting = false;
  }
}

/** One node's side of a {@link MemoryEndpoint}: its SUB, and its PUB when it holds the endpoint. */
export class MemoryTransport implements Transport, Holder {
  readonly nodeId: string;
  readonly clock: NodeClock;
  readonly #endpoint: MemoryEndpoint;
  #handlers: TransportHandlers | undefined;
  #closed = false;
  /** Presence and probe topics this SUB subscribes (besides the heartbeats). @internal */
  readonly topics = new Set<string>();
  /** The holder this SUB is connected to. @internal */
  connectedTo: Holder | undefined;
  /** A connection is on its way. @internal */
  connecting = false;
  /** Whether this SUB reads heartbeats (`hearOwnHeartbeats`). */
  #hearing = true;

  constructor(endpoint: MemoryEndpoint, nodeId: string, clock: NodeClock) {
    this.#endpoint = endpoint;
    this.nodeId = nodeId;
    this.clock = clock;
  }

  async open(handlers: TransportHandlers, presenceTopic?: string): Promise<void> {
    if (this.#closed) return;
    this.#handlers = handlers;
    if (presenceTopic !== undefined) this.topics.add(presenceTopic);
    this.#endpoint.open(this);
  }

  probe(topic: string, on: boolean): void {
    if (this.#closed || this.#handlers === undefined) return;
    if (on === this.topics.has(topic)) return;
    if (on) this.topics.add(topic);
    else this.topics.delete(topic);
    this.#endpoint.subscription(this, topic, on);
  }

  /** As a ZeroMQ SUB that drops its subscription to the heartbeats: filtered as they arrive. */
  hearOwnHeartbeats(on: boolean): void {
    this.#hearing = on;
  }

  async bind(): Promise<BindOutcome> {
    if (this.#closed) return { outcome: 'failed', detail: 'transport closed' };
    return this.#endpoint.bind(this);
  }

  async publish(frames: Frames): Promise<void> {
    if (!this.#closed) this.#endpoint.send(this, frames);
  }

  async release(farewell: Frames | undefined): Promise<void> {
    this.#endpoint.release(this, farewell);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#endpoint.close(this);
    this.#handlers = undefined;
  }

  /** The process died: the endpoint is freed, connections end, nothing is delivered any more. */
  crash(): void {
    this.clock.kill();
    void this.close();
  }

  presence(joined: boolean, topic: string): void {
    this.#handlers?.onPresence(joined, topic);
  }

  subscribed(): void {
    this.#handlers?.onSubscribed?.();
  }

  /** @internal */
  receive(frames: Frames, latency: number): void {
    this.clock.arrive(() => {
      if (!this.#hearing && frames[0].equals(HEARTBEAT_TOPIC)) return;
      this.#handlers?.onMessage([frames[0], frames[1]]);
    }, latency);
  }

  /** @internal */
  event(type: 'connected' | 'disconnected', latency: number): void {
    this.clock.arrive(() => this.#handlers?.onEvent({ type }), latency);
  }
}
