/**
 * The watcher on the application's own bus: a {@link Transport} over two zeromq.js sockets the
 * application already has, its publisher (the socket its primary binds for its own events) and
 * its subscriber (the socket every instance reads those events with). One endpoint, one port.
 *
 * - The publisher carries the failover topics (`instance.*`) besides the application's. A
 *   promotion binds it on the endpoint; a release unbinds it. Every send on it, the
 *   application's ({@link ZmqBus.send}) and the watcher's, goes through one queue in call order:
 *   zeromq.js allows one send at a time per socket, and the application's messages keep their
 *   order among themselves and with the heartbeats.
 * - The subscriber receives both. {@link ZmqBus} reads it and demultiplexes by topic: the first
 *   frame starting with `instance.` goes to the watcher, every other message to the application
 *   through {@link ZmqBus.messages}, in the order received. Nothing is reordered; nothing of the
 *   application's is dropped unless the application stops reading for longer than its buffer
 *   (`bufferSize`, counted in {@link ZmqBus.counters}), as the subscriber's own high-water
 *   mark would.
 * - With an `XPublisher` the primary also learns who is connected (presence) and welcomes a new
 *   subscriber at once (PROTOCOL.md); with a plain `Publisher` it does not: followers still
 *   follow, and `liveNodes()` lists only the primary.
 *
 * What makes the one-primary guarantee hold is what the ZeroMQ transport has too (TRANSPORT.md):
 * binding `tcp://HOST:PORT` or `ipc://@NAME` is exclusive and the kernel frees it when the holder
 * dies; a filesystem `ipc:///PATH` is guarded by the same path lock; a crash is seen by every
 * subscriber as its socket's `disconnect`.
 *
 * The bus owns both sockets once given: it connects the subscriber, binds and unbinds the
 * publisher, and {@link ZmqBus.close} (which the watcher's `shutdown()` calls) closes both.
 *
 * @module
 */
import * as zmq from 'zeromq';
import { InvalidOptionError } from '../../errors.js';
import { MAX_PRESENCE_TOPIC_BYTES, TOPIC_PREFIX } from '../../protocol/messages.js';
import type { BindOutcome, Frames, Transport, TransportCounters, TransportHandlers } from '../transport.js';
import { parseEndpoint, type Endpoint } from '../zmq/endpoint.js';
import { tryLockPath, type PathLock } from '../zmq/path-lock.js';
import { bindFailure, bindsWithoutLookup, CLOSE_KEEPS_SOCKET_FILE, subscribeHeartbeats } from '../zmq/zmq-transport.js';

/** Options of a {@link ZmqBus}. */
export interface ZmqBusOptions {
  /**
   * The application's publisher, not bound, or a function that makes one. A promotion binds it
   * on `endpoint`. An `XPublisher` also reports who is connected (presence) and lets the primary
   * welcome a newcomer. A release closes it (unbinding leaves its connections up in libzmq, and
   * the followers would never hear the holder left) and the next promotion binds a fresh one:
   * made by the function, or of the socket's class with its linger, high-water marks and
   * maximum message size. Give a function for any other option (CURVE keys, say).
   */
  readonly publisher: zmq.Publisher | zmq.XPublisher | (() => zmq.Publisher | zmq.XPublisher);
  /** The application's subscriber, not connected: the bus connects it to `endpoint`. */
  readonly subscriber: zmq.Subscriber;
  /**
   * The one endpoint of the application and the cluster: `tcp://HOST:PORT`, `ipc://@NAME`
   * (Linux) or `ipc:///PATH`. Give the watcher the same one.
   * @example 'tcp://127.0.0.1:5555'
   */
  readonly endpoint: string;
  /**
   * Topics of the application that the bus subscribes for it (prefixes, as ZeroMQ matches them).
   * The application may subscribe its socket itself instead; `''` is every topic.
   * @default []
   */
  readonly topics?: readonly string[];
  /**
   * Most application messages held for {@link ZmqBus.messages} while the application does not
   * read; beyond it the oldest wait and the newest are dropped and counted (`appDropped`).
   * @default 10000
   */
  readonly bufferSize?: number;
  /**
   * Longest wait in `release()` for the farewell to come back through the endpoint, ms; the
   * publisher stays bound until then (what was queued for the subscribers goes out first).
   * @default 250
   */
  readonly farewellTimeout?: number;
}

/** What the bus counted, besides the watcher's own counters. */
export interface ZmqBusCounters extends TransportCounters {
  /** Application messages handed to {@link ZmqBus.messages} so far. */
  readonly appReceived: number;
  /** Application messages dropped because the application read none of `bufferSize` waiting. */
  readonly appDropped: number;
  /** Application messages sent on the bound endpoint. */
  readonly appSent: number;
  /** Application messages given to `send()` while this node did not hold the endpoint (not sent). */
  readonly appNotSent: number;
}

/** The application's frames, as given to {@link ZmqBus.send}. */
export type BusFrames = Buffer | string | ReadonlyArray<Buffer | string>;

const DEFAULT_BUFFER = 10_000;
const DEFAULT_FAREWELL_TIMEOUT = 250;
/** Messages handled in a row before the receive loop lets timers and I/O run. */
const YIELD_EVERY = 32;

/**
 * A {@link Transport} on the application's own publisher and subscriber.
 *
 * @example
 * import * as zmq from 'zeromq';
 * import { Watcher } from 'failover-watch';
 * import { ZmqBus } from 'failover-watch/transport';
 *
 * const endpoint = 'tcp://127.0.0.1:5555';
 * const bus = new ZmqBus({ publisher: new zmq.Publisher(), subscriber: new zmq.Subscriber(), endpoint, topics: ['app.'] });
 * const watcher = new Watcher({ endpoint, onPromote: () => void bus.send(['app.hello', 'I lead']) }, { transport: bus });
 * await watcher.start();
 * for await (const [topic, body] of bus.messages()) console.log(topic.toString(), body?.toString());
 */
export class ZmqBus implements Transport {
  #pub: zmq.Publisher | zmq.XPublisher;
  readonly #makePublisher: () => zmq.Publisher | zmq.XPublisher;
  readonly #sub: zmq.Subscriber;
  readonly #endpoint: Endpoint;
  readonly #topics: readonly string[];
  readonly #bufferSize: number;
  readonly #farewellTimeout: number;
  #handlers: TransportHandlers | undefined;
  /** Every operation on the publisher (send, bind, unbind), one at a time in call order. */
  #chain: Promise<unknown> = Promise.resolve();
  #bound = false;
  #lock: PathLock | undefined;
  #opened = false;
  #closed = false;
  #hearingHeartbeats = true;
  #loop: Promise<void> | undefined;
  #subscriptionLoop: Promise<void> | undefined;
  #farewell: { payload: Buffer; resolve: () => void } | undefined;
  #disconnectTimers = new Set<ReturnType<typeof setImmediate>>();
  // The application's side.
  readonly #queue: Buffer[][] = [];
  #waiting: ((r: IteratorResult<Buffer[]>) => void) | undefined;
  #appReceived = 0;
  #appDropped = 0;
  #appSent = 0;
  #appNotSent = 0;
  #subscriptionsIgnored = 0;

  constructor(options: ZmqBusOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
    const { subscriber } = options;
    const publisher = typeof options.publisher === 'function' ? options.publisher() : options.publisher;
    if (!(publisher instanceof zmq.Publisher) && !(publisher instanceof zmq.XPublisher)) {
      throw new InvalidOptionError('publisher', 'a zeromq Publisher or XPublisher, or a function that makes one', publisher);
    }
    if (!(subscriber instanceof zmq.Subscriber)) throw new InvalidOptionError('subscriber', 'a zeromq Subscriber', subscriber);
    if (publisher.closed) throw new InvalidOptionError('publisher', 'an open socket', 'a closed socket');
    const makePublisher = typeof options.publisher === 'function' ? options.publisher : successorOf(publisher);
    if (subscriber.closed) throw new InvalidOptionError('subscriber', 'an open socket', 'a closed socket');
    const endpoint = typeof options.endpoint === 'string' ? parseEndpoint(options.endpoint) : 'a string';
    if (typeof endpoint === 'string') throw new InvalidOptionError('endpoint', endpoint, options.endpoint);
    const topics = options.topics ?? [];
    if (!Array.isArray(topics) || !topics.every((t) => typeof t === 'string')) {
      throw new InvalidOptionError('topics', 'an array of strings', topics);
    }
    const failover = topics.find((t) => t.startsWith(TOPIC_PREFIX));
    if (failover !== undefined) throw new InvalidOptionError('topics', `topics outside ${TOPIC_PREFIX}* (the watcher's)`, failover);
    const bufferSize = options.bufferSize ?? DEFAULT_BUFFER;
    if (!Number.isInteger(bufferSize) || bufferSize < 1) throw new InvalidOptionError('bufferSize', 'an integer >= 1', bufferSize);
    const farewellTimeout = options.farewellTimeout ?? DEFAULT_FAREWELL_TIMEOUT;
    if (!Number.isInteger(farewellTimeout) || farewellTimeout < 0) {
      throw new InvalidOptionError('farewellTimeout', 'an integer >= 0 (ms)', farewellTimeout);
    }
    this.#pub = publisher;
    this.#makePublisher = makePublisher;
    this.#sub = subscriber;
    this.#endpoint = endpoint;
    this.#topics = [...topics];
    this.#bufferSize = bufferSize;
    this.#farewellTimeout = farewellTimeout;
    prepare(publisher);
  }

  // --- the application's side -------------------------------------------------------------------

  /** The endpoint, as given. */
  get endpoint(): string {
    return this.#endpoint.address;
  }

  /** True while this node holds the endpoint (its publisher is bound): its sends reach the cluster. */
  get bound(): boolean {
    return this.#bound;
  }

  /**
   * Sends an application message on the publisher, after every send and bind before it (the
   * watcher's included). Resolves `true` once sent on the bound endpoint, `false` when this node
   * does not hold it (a follower's publisher reaches nobody; nothing is sent). The first frame
   * is the topic and must not start with `instance.` (the watcher's topics).
   */
  send(frames: BusFrames): Promise<boolean> {
    const list = (Array.isArray(frames) ? [...(frames as ReadonlyArray<Buffer | string>)] : [frames as Buffer | string]).map((f) =>
      typeof f === 'string' ? Buffer.from(f) : f,
    );
    const topic = list[0];
    if (topic === undefined || !Buffer.isBuffer(topic) || list.some((f) => !Buffer.isBuffer(f))) {
      return Promise.reject(new InvalidOptionError('frames', 'a topic frame and any more frames (Buffer or string)', frames));
    }
    if (topic.toString('latin1', 0, TOPIC_PREFIX.length) === TOPIC_PREFIX) {
      return Promise.reject(new InvalidOptionError('frames', `a topic outside ${TOPIC_PREFIX}* (the watcher's)`, topic.toString()));
    }
    return this.#serial(async () => {
      if (!this.#bound || this.#closed) {
        this.#appNotSent++;
        return false;
      }
      await this.#pub.send(list);
      this.#appSent++;
      return true;
    });
  }

  /**
   * The application's messages (every message whose topic is not the watcher's), in the order
   * the subscriber received them. One reader; ends when the bus closes, after what was queued.
   */
  messages(): AsyncIterableIterator<Buffer[]> {
    const next = (): Promise<IteratorResult<Buffer[]>> => {
      const head = this.#queue.shift();
      if (head !== undefined) return Promise.resolve({ value: head, done: false });
      if (this.#closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => {
        this.#waiting = resolve;
      });
    };
    const iterator: AsyncIterableIterator<Buffer[]> = {
      next,
      return: async () => ({ value: undefined, done: true }),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** What the bus counted. */
  counters(): ZmqBusCounters {
    return {
      peersRefused: 0,
      subscriptionsIgnored: this.#subscriptionsIgnored,
      handshakesFailed: 0,
      reconnects: 0,
      appReceived: this.#appReceived,
      appDropped: this.#appDropped,
      appSent: this.#appSent,
      appNotSent: this.#appNotSent,
    };
  }

  // --- the watcher's side (Transport) -----------------------------------------------------------

  async open(handlers: TransportHandlers, presenceTopic?: string): Promise<void> {
    if (this.#closed || this.#opened) return;
    this.#opened = true;
    this.#handlers = handlers;
    const sub = this.#sub;
    let connectedAt = 0;
    sub.events.on('connect', () => {
      connectedAt = performance.now();
      if (!this.#closed) safe(() => handlers.onEvent({ type: 'connected' }));
    });
    sub.events.on('connect:retry', () => {
      if (!this.#closed) safe(() => handlers.onEvent({ type: 'connectRetried' }));
    });
    sub.events.on('disconnect', () => {
      // One turn later, as the ZeroMQ transport does: a farewell read in the same poll is
      // delivered first, so a graceful handover is taken as one.
      const at = performance.now();
      const timer = setImmediate(() => {
        this.#disconnectTimers.delete(timer);
        if (!this.#closed && connectedAt <= at) safe(() => handlers.onEvent({ type: 'disconnected' }));
      });
      this.#disconnectTimers.add(timer);
    });
    sub.subscribe(TOPIC_PREFIX);
    if (presenceTopic !== undefined) sub.subscribe(presenceTopic);
    for (const topic of this.#topics) sub.subscribe(topic);
    sub.connect(this.#endpoint.address);
    this.#loop = this.#receive(sub, handlers);
  }

  async #receive(sub: zmq.Subscriber, handlers: TransportHandlers): Promise<void> {
    try {
      let burst = 0;
      for await (const frames of sub) {
        if (++burst % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
        const topic = frames[0];
        if (topic !== undefined && topic.length >= TOPIC_PREFIX.length && topic.toString('latin1', 0, TOPIC_PREFIX.length) === TOPIC_PREFIX) {
          const farewell = this.#farewell;
          if (farewell !== undefined && frames.length === 2 && frames[1]?.equals(farewell.payload)) {
            this.#farewell = undefined;
            farewell.resolve();
          }
          safe(() => handlers.onMessage(frames));
        } else {
          this.#deliver(frames);
        }
      }
    } catch {
      // The socket was closed under the iterator.
    }
  }

  #deliver(frames: Buffer[]): void {
    this.#appReceived++;
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      waiting({ value: frames, done: false });
      return;
    }
    if (this.#queue.length >= this.#bufferSize) {
      this.#appDropped++;
      return;
    }
    this.#queue.push(frames);
  }

  /** As the watcher's own transport does (transport/zmq/zmq-transport.ts). */
  hearOwnHeartbeats(on: boolean): void {
    if (this.#closed || !this.#opened || on === this.#hearingHeartbeats) return;
    this.#hearingHeartbeats = on;
    subscribeHeartbeats(this.#sub, on);
  }

  probe(topic: string, on: boolean): void {
    if (this.#closed || !this.#opened) return;
    if (on) this.#sub.subscribe(topic);
    else this.#sub.unsubscribe(topic);
  }

  bind(): Promise<BindOutcome> {
    return this.#serial(() => this.#bind());
  }

  async #bind(): Promise<BindOutcome> {
    if (this.#closed) return { outcome: 'failed', detail: 'transport closed' };
    if (this.#bound) return { outcome: 'bound' };
    const endpoint = this.#endpoint;
    if (endpoint.kind === 'ipc-path') {
      if (!CLOSE_KEEPS_SOCKET_FILE) return { outcome: 'failed', detail: `filesystem ipc endpoints need libzmq 4.3.5 or later (here ${zmq.version})` };
      const lock = await tryLockPath(endpoint.path);
      if (lock === 'in-use') return { outcome: 'in-use' };
      this.#lock = lock;
    }
    try {
      if (bindsWithoutLookup(endpoint)) bindSyncOnce(this.#pub, endpoint.address);
      else await this.#pub.bind(endpoint.address);
    } catch (error) {
      await this.#releaseLock();
      const outcome = bindFailure((error as { code?: string }).code, endpoint.kind);
      if (outcome === 'in-use') return { outcome };
      return { outcome, detail: error instanceof Error ? error.message : String(error) };
    }
    if (this.#closed) {
      await this.#unbind();
      await this.#releaseLock();
      return { outcome: 'failed', detail: 'transport closed' };
    }
    this.#bound = true;
    if (this.#pub instanceof zmq.XPublisher && this.#subscriptionLoop === undefined) {
      this.#subscriptionLoop = this.#subscriptions(this.#pub);
    }
    return { outcome: 'bound' };
  }

  /** An XPublisher's (un)subscriptions: presence and the welcome, as in the ZeroMQ transport. */
  async #subscriptions(pub: zmq.XPublisher): Promise<void> {
    let welcomeQueued = false;
    try {
      for await (const [frame] of pub) {
        if (!this.#bound) continue;
        if (frame === undefined || frame.length < 2 || frame.length > 1 + MAX_PRESENCE_TOPIC_BYTES || (frame[0] !== 0 && frame[0] !== 1)) {
          this.#subscriptionsIgnored++;
          continue;
        }
        const joined = frame[0] === 1;
        const handlers = this.#handlers;
        if (handlers === undefined) continue;
        const topic = frame.toString('utf8', 1);
        if (joined && topic === TOPIC_PREFIX) {
          if (!welcomeQueued) {
            welcomeQueued = true;
            setImmediate(() => {
              welcomeQueued = false;
              if (this.#bound && !this.#closed) safe(() => handlers.onSubscribed?.());
            });
          }
          continue;
        }
        // The application's own topics are not presence: the watcher ignores what it cannot parse.
        if (!topic.startsWith(TOPIC_PREFIX)) safe(() => handlers.onPresence(joined, topic));
      }
    } catch {
      // Closed under the iterator.
    }
  }

  publish(frames: Frames): Promise<void> {
    return this.#serial(async () => {
      if (!this.#bound || this.#closed) return;
      await sendQuietly(this.#pub, frames);
    });
  }

  release(farewell: Frames | undefined): Promise<void> {
    return this.#serial(() => this.#release(farewell));
  }

  async #release(farewell: Frames | undefined): Promise<void> {
    if (!this.#bound) return;
    this.#bound = false;
    let seen: Promise<void> | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (farewell !== undefined && !this.#closed) {
      seen = new Promise<void>((resolve) => {
        this.#farewell = { payload: farewell[1], resolve };
        timer = setTimeout(resolve, this.#farewellTimeout);
      });
      await sendQuietly(this.#pub, farewell);
    }
    // Closing ends the listener and the connections (an unbind would leave them up). Only once
    // the farewell came back to this node's own subscriber (or after farewellTimeout): a close
    // right after the sends now and then ended a connection before its queue had gone out
    // (docs/TRANSPORT.md, "Release"), and every message sent before, the application's
    // included, must reach the subscribers before their disconnect.
    await this.#releaseLock();
    if (seen !== undefined) {
      await seen;
      clearTimeout(timer);
      this.#farewell = undefined;
    }
    this.#retire();
  }

  /** Closes the bound publisher (flushing within its linger) and makes the next one. */
  #retire(): void {
    const old = this.#pub;
    if (old.linger < 0) old.linger = RETIRE_LINGER;
    old.close();
    this.#subscriptionLoop = undefined;
    if (this.#closed) return;
    const next = this.#makePublisher();
    prepare(next);
    this.#pub = next;
  }

  /**
   * Async: zeromq.js's unbindSync fails (EADDRINUSE) where unbind succeeds, on the zeromq 6.x
   * tried (a conformance test caught it).
   */
  async #unbind(): Promise<void> {
    try {
      await this.#pub.unbind(this.#pub.lastEndpoint ?? this.#endpoint.address);
    } catch {
      // Not bound any more (closed): nothing to give back.
    }
  }

  async #releaseLock(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    if (lock !== undefined) await lock.release();
  }

  /** Releases the endpoint (no farewell), closes both sockets and ends {@link messages}; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#serial(async () => {
      this.#bound = false;
      this.#pub.close();
      await this.#releaseLock();
    });
    for (const timer of this.#disconnectTimers) clearImmediate(timer);
    this.#disconnectTimers.clear();
    this.#sub.close();
    await this.#loop;
    await this.#subscriptionLoop;
    this.#handlers = undefined;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(op, op);
    this.#chain = next.catch(() => undefined);
    return next;
  }
}

/** Linger of a retired publisher that had none (infinite), ms. */
const RETIRE_LINGER = 1000;

function prepare(pub: zmq.Publisher | zmq.XPublisher): void {
  if (pub instanceof zmq.XPublisher) pub.verbosity = 'allSubsUnsubs';
}

/** A maker of publishers like `pub`: its class, with its linger, high-water marks and maximum message size. */
function successorOf(pub: unknown): () => zmq.Publisher | zmq.XPublisher {
  // Read now: a closed socket's options cannot be read.
  if (!(pub instanceof zmq.Publisher) && !(pub instanceof zmq.XPublisher)) return () => pub as zmq.Publisher;
  const options = { linger: pub.linger, sendHighWaterMark: pub.sendHighWaterMark, maxMessageSize: pub.maxMessageSize };
  return pub instanceof zmq.XPublisher ? () => new zmq.XPublisher(options) : () => new zmq.Publisher(options);
}

async function sendQuietly(pub: zmq.Publisher | zmq.XPublisher, frames: Frames): Promise<void> {
  if (pub.closed) return;
  try {
    await pub.send(frames as unknown as Buffer[]);
  } catch {
    // A PUB drops rather than blocks; a closed one has nobody to tell.
  }
}

/** As in the ZeroMQ transport: libzmq now and then answers a refused bind with EAGAIN; try once more. */
function bindSyncOnce(pub: zmq.Publisher | zmq.XPublisher, address: string): void {
  try {
    pub.bindSync(address);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EAGAIN') throw error;
    pub.bindSync(address);
  }
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // The watcher's handlers do not throw; a last guard.
  }
}
