/**
 * The transport port: the narrow interface through which the watcher reaches the endpoint.
 * A real implementation over ZeroMQ lives in `zmq/`, an in-memory one in `memory/`.
 *
 * @module
 */

/** The outcome of an exclusive bind attempt. Losing the race is a value, not an exception. */
export type BindOutcome =
  | { readonly outcome: 'bound' }
  | { readonly outcome: 'in-use' }
  | { readonly outcome: 'failed'; readonly detail: string };

/** Connection events of the subscribing side. */
export type TransportEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected' }
  | { readonly type: 'connectRetried' }
  /**
   * While this node holds a filesystem endpoint: its socket file is no longer the one it bound
   * (`gone`: nothing at the path; `replaced`: another file there). Reported once per bind.
   */
  | { readonly type: 'endpointStolen'; readonly found: 'gone' | 'replaced'; readonly detail: string };

/** What the transport calls back with. Handlers must not throw (the transport guards anyway). */
export interface TransportHandlers {
  /** One multipart message as received, not yet validated. */
  onMessage(frames: Buffer[]): void;
  onEvent(event: TransportEvent): void;
  /**
   * While this node holds the endpoint: a subscription (`joined`) or unsubscription of another
   * node's SUB socket, with the subscribed topic (see `presenceTopic` in the protocol).
   */
  onPresence(joined: boolean, topic: string): void;
  /**
   * While this node holds the endpoint: a SUB socket subscribed to the heartbeats (`instance.`),
   * which it does as it connects. Reported once the subscription is in force, so a message
   * published from this call on reaches that subscriber (the welcome, PROTOCOL.md section 5).
   */
  onSubscribed?(): void;
}

/** What an endpoint refused or ignored, for `status()`. */
export interface TransportCounters {
  /** Connections to the bound endpoint that failed the handshake (no CURVE, wrong keys, not admitted). */
  readonly peersRefused: number;
  /** Messages from subscribers that were not a well-formed (un)subscription. */
  readonly subscriptionsIgnored: number;
  /**
   * Times the primary paused reading what subscribers send because they sent more than its
   * budget (a flood: 4096 at once, then 1000 a second; see subscription-budget.ts).
   */
  readonly subscriptionsDelayed?: number;
  /**
   * This node's own connections to the endpoint whose handshake failed: a holder without the
   * cluster's CURVE server key (or without CURVE), one that does not admit this node, or garbage.
   */
  readonly handshakesFailed: number;
  /**
   * Times this node connected to the endpoint again itself, because the connection ended in a
   * protocol error (a failed handshake, an oversized frame) after which ZeroMQ does not retry.
   */
  readonly reconnects: number;
}

/** Frames of one outgoing message. */
export type Frames = readonly [Buffer, Buffer];

/** The endpoint as the watcher sees it. */
export interface Transport {
  /**
   * Subscribes to the endpoint (whoever binds it, now or later) and starts delivering.
   * `presenceTopic` is subscribed too, so the holder learns this node is there.
   */
  open(handlers: TransportHandlers, presenceTopic?: string): Promise<void>;
  /** Subscribes (or unsubscribes) a liveness-probe topic; the holder answers a subscription with a heartbeat. */
  probe(topic: string, on: boolean): void;
  /**
   * Optional. Whether this node's own subscriber reads heartbeats (`instance.heartbeat`); on
   * after `open()`. The watcher turns it off while it holds the endpoint, once its subscriber
   * read one of its own heartbeats back on its current connection, and on again at any
   * `connected` or `disconnected` event and when it gives the endpoint up. While off, the
   * subscriber reads no `instance.heartbeat` and still reads `instance.shutdown` (the farewell
   * `release()` waits for), presence and probe topics; the other `instance.` topics may or may
   * not arrive. A transport without it delivers a holder's own heartbeats all along, which only
   * costs their reading (PROTOCOL.md section 2.3).
   */
  hearOwnHeartbeats?(on: boolean): void;
  /** Tries to bind the endpoint exclusively. */
  bind(): Promise<BindOutcome>;
  /** Publishes on the bound endpoint; never blocks (drops at the high-water mark). */
  publish(frames: Frames): Promise<void>;
  /**
   * Gives the endpoint back: publishes the farewell (if any) after every send already asked for,
   * and closes the socket once the farewell has gone through the endpoint (a bounded wait; at
   * once without a farewell), so that what was queued for the subscribers reaches them. Resolves
   * then. `close()` during a release ends it: nothing stays bound after `close()` resolves.
   */
  release(farewell: Frames | undefined): Promise<void>;
  /** Closes everything; idempotent. */
  close(): Promise<void>;
  /** What the endpoint refused or ignored so far (optional: in-memory transports refuse nothing). */
  counters?(): TransportCounters;
}
