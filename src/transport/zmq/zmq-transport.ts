/**
 * The ZeroMQ transport: a SUB socket that every node (the primary too) keeps connected to the
 * cluster endpoint, and a PUB socket that only the holder of the endpoint binds.
 *
 * The primary's own SUB receives its own messages: that is how `release()` knows the farewell
 * `instance.shutdown` went through the endpoint before the socket closes, and how the primary
 * sees its heartbeats leave on time.
 *
 * Security (see docs/SECURITY.md): with `curve`, the bound XPUB is a CURVE server that admits
 * only the allowed client keys (a ZAP handler, `zap.ts`) and every SUB is a CURVE client that
 * accepts only a holder with the cluster's server key; without it, anyone who can reach the
 * endpoint can subscribe, and anyone who binds it first is followed. Either way every socket has
 * a maximum message size, high-water marks and a handshake time limit, so a peer cannot grow
 * this process's memory or hold connections open without completing a handshake.
 *
 * A filesystem endpoint's socket file can be unlinked, or replaced by another process's socket,
 * behind the holder's back (libzmq, and any other binder that ignores the path lock, unlinks the
 * file before it binds). The holder then keeps its existing connections but nobody new reaches
 * it. So after each bind the transport notes the file's identity (device and inode, from
 * `lstat`, on a later turn of the event loop, off the takeover's clock) and checks it again,
 * without blocking, whenever it publishes while no check is under way: a heartbeat per
 * `heartbeatInterval`. A file that is gone or another inode is reported once per bind, as the
 * `endpointStolen` event.
 *
 * @module
 */
import { lstat } from 'node:fs/promises';
import { isIP } from 'node:net';
import * as zmq from 'zeromq';
import { FailoverError } from '../../errors.js';
import { TOPIC_PREFIX, MAX_PAYLOAD_BYTES, MAX_PRESENCE_TOPIC_BYTES, type Topic } from '../../protocol/messages.js';
import { silentLogger, type Logger } from '../../runtime/logger.js';
import type { BindOutcome, Frames, Transport, TransportCounters, TransportHandlers } from '../transport.js';
import type { CurveOptions } from './curve.js';
import type { Endpoint } from './endpoint.js';
import { checkPrivateDirectory } from './ipc-directory.js';
import { tryLockPath, warmPathLock, type PathLock } from './path-lock.js';
import { SubscriptionBudget } from './subscription-budget.js';
import { registerZapDomain, type ZapRegistration } from './zap.js';

/** Tuning of the ZeroMQ transport. */
export interface ZmqTransportOptions {
  /** How long a closed PUB keeps flushing queued messages, ms. */
  readonly linger: number;
  /** Longest wait for the farewell to come back through the endpoint, ms. */
  readonly farewellTimeout: number;
  /** First and largest reconnect interval of the SUB socket, ms. */
  readonly reconnectInterval: number;
  readonly reconnectMaxInterval: number;
  /** How long a connecting peer may take to complete the ZMTP (and CURVE) handshake, ms. */
  readonly handshakeInterval: number;
  /**
   * CURVE: the bound XPUB is the CURVE server with the cluster's server key pair and admits only
   * the allowed client keys (a ZAP handler); the SUB is a CURVE client with this node's pair.
   */
  readonly curve: CurveOptions | undefined;
  /** Where warnings about unsafe endpoints go. Never given a key. */
  readonly logger: Logger;
  /** Make the next bind's socket ahead of time (false for a node that only listens). */
  readonly prepareBind: boolean;
}

const DEFAULTS: ZmqTransportOptions = {
  linger: 500,
  farewellTimeout: 250,
  reconnectInterval: 10,
  reconnectMaxInterval: 100,
  handshakeInterval: 3000,
  curve: undefined,
  logger: silentLogger,
  prepareBind: true,
};

// Frames larger than this are refused by libzmq before they reach us (the decoder's own limit
// is smaller; this one bounds memory).
const MAX_MESSAGE_SIZE = MAX_PAYLOAD_BYTES * 4;
/** What a holder's own SUB keeps while it does not read its heartbeats: the farewell. */
const FAREWELL_TOPIC: Topic = 'instance.shutdown';
const HIGH_WATER_MARK = 1000;
/**
 * (Un)subscriptions a connection may have queued in the XPUB that libzmq has not taken in yet.
 * libzmq moves a connection's whole queue into the socket's own list of unread subscriptions
 * (a list without a bound, and each one into its subscription table) every time the socket
 * processes its commands: on every send, and every 100 messages read. With the default of 1000,
 * a peer that wrote subscriptions faster than the primary read them grew that list by hundreds
 * of MB. With this, a flood waits in the kernel's socket buffers (bounded) until the primary
 * reads on, at the pace of its budget (subscription-budget.ts). One, not more: libzmq refills
 * from every connection each time the socket processes commands, which happens far more often
 * than the primary reads (measured: 8 let a flood in 8 times as fast as 1).
 */
const SUBSCRIPTION_HIGH_WATER_MARK = 1;

export class ZmqTransport implements Transport {
  readonly #endpoint: Endpoint;
  readonly #options: ZmqTransportOptions;
  #sub: zmq.Subscriber | undefined;
  #pub: zmq.XPublisher | undefined;
  /** A socket made ahead of time for the next bind (see #prepareSpare). */
  #spare: zmq.XPublisher | undefined;
  #handlers: TransportHandlers | undefined;
  #lock: PathLock | undefined;
  #sending: Promise<void> = Promise.resolve();
  /** This node's SUB has a connection to the endpoint (the monitor's last word). */
  #subConnected = false;
  /** Whether the SUB reads heartbeats (`hearOwnHeartbeats`): subscribed to all of `instance.`. */
  #hearingHeartbeats = true;
  /** The release under way, which close() ends and waits for. */
  #releasing: Promise<void> | undefined;
  #sendsPending = 0;
  #farewell: { payload: Buffer; resolve: () => void } | undefined;
  #closed = false;
  #loop: Promise<void> | undefined;
  #zap: ZapRegistration | undefined;
  #peersRefused = 0;
  #subscriptionsIgnored = 0;
  #subscriptionsDelayed = 0;
  #handshakesFailed = 0;
  #reconnects = 0;
  #failing = false;
  #rearm: ReturnType<typeof setTimeout> | undefined;
  #spareTimer: ReturnType<typeof setTimeout> | undefined;
  /** The check of a filesystem ipc endpoint's directory, made once (see ipc-directory.ts). */
  #directoryChecked: Promise<void> | undefined;
  /** The path lock's warm-up run, started by open(); close() waits for it. */
  #warmingLock: Promise<void> | undefined;
  /** Releases waiting for sends under way: a later release must not overtake them. */
  #releasesWaiting = 0;
  #warmingUp = false;
  /** The socket file of the filesystem endpoint this node bound, as `lstat` saw it after the bind. */
  #socketFile: SocketFile | undefined;
  /** A check of that file under way (see #checkSocketFile). */
  #fileCheck: Promise<void> | undefined;

  constructor(endpoint: Endpoint, options: Partial<ZmqTransportOptions> = {}) {
    this.#endpoint = endpoint;
    this.#options = { ...DEFAULTS, ...options };
  }

  async open(handlers: TransportHandlers, presenceTopic?: string): Promise<void> {
    this.#handlers = handlers;
    const sub = new zmq.Subscriber({
      reconnectInterval: this.#options.reconnectInterval,
      reconnectMaxInterval: this.#options.reconnectMaxInterval,
      receiveHighWaterMark: HIGH_WATER_MARK,
      maxMessageSize: MAX_MESSAGE_SIZE,
      linger: 0,
      ...clientSecurity(this.#options.curve),
    });
    this.#sub = sub;
    // libzmq gives up for good on a connection that ended in a protocol error: a failed
    // handshake (a holder that speaks another mechanism, has another server key or refuses this
    // node's key) or a frame over maxMessageSize. It emits no reconnect event then, and this node
    // would stay deaf to every later primary. So after each disconnect, if libzmq shows no sign
    // of reconnecting, connect again ourselves.
    let activityAt = performance.now();
    const active = (): void => {
      activityAt = performance.now();
    };
    let connectedAt = 0;
    sub.events.on('connect', () => {
      active();
      connectedAt = performance.now();
      this.#subConnected = true;
      // Monitor events may arrive after close(): no handler runs then (conformance suite).
      if (!this.#closed) safe(() => handlers.onEvent({ type: 'connected' }));
    });
    sub.events.on('connect:delay', active);
    sub.events.on('connect:retry', () => {
      active();
      if (!this.#closed) safe(() => handlers.onEvent({ type: 'connectRetried' }));
    });
    let disconnectedAt = 0;
    const patience = 2 * this.#options.reconnectMaxInterval + 50;
    const check = (): void => {
      this.#rearm = undefined;
      if (this.#closed || sub.closed || activityAt > disconnectedAt) return;
      const wait = disconnectedAt + patience - performance.now();
      if (wait > 0) {
        this.#rearm = setTimeout(check, wait);
        return;
      }
      this.#reconnects++;
      try {
        sub.disconnect(this.#endpoint.address);
      } catch {
        // Already gone: libzmq dropped the endpoint with the failed session.
      }
      sub.connect(this.#endpoint.address);
    };
    sub.events.on('disconnect', () => {
      disconnectedAt = performance.now();
      this.#subConnected = false;
      // Reported on the next turn of the event loop. A holder that leaves publishes its farewell
      // and then closes, so the farewell is in this SUB's queue before libzmq reports the
      // disconnect, and its socket is readable in the same poll; but the two arrive on different
      // file descriptors, in no set order. One turn lets the receive loop deliver the farewell
      // first, so a graceful handover is taken as one (reason `shutdown`, not `disconnect`).
      const at = disconnectedAt;
      setImmediate(() => {
        // Not when the SUB has already connected again (to a new holder) since: stale.
        if (!this.#closed && connectedAt <= at) safe(() => handlers.onEvent({ type: 'disconnected' }));
      });
      if (this.#rearm === undefined && !this.#closed) this.#rearm = setTimeout(check, patience);
    });
    const failed = (): void => {
      this.#handshakesFailed++;
      if (!this.#failing) {
        this.#failing = true;
        this.#options.logger.warn(
          `the handshake with the holder of ${this.#endpoint.address} failed: it lacks the cluster's ` +
            `${this.#options.curve === undefined ? 'protocol (CURVE on its side?)' : 'CURVE server key, or does not admit this node\'s key'}; ` +
            'not following it, retrying',
        );
      }
    };
    sub.events.on('handshake:error:protocol', failed);
    sub.events.on('handshake:error:auth', failed);
    sub.events.on('handshake:error:other', failed);
    sub.events.on('handshake', () => {
      this.#failing = false;
    });
    sub.subscribe(TOPIC_PREFIX);
    if (presenceTopic !== undefined) sub.subscribe(presenceTopic);
    sub.connect(this.#endpoint.address);
    this.#loop = this.#receive(sub, handlers);
    this.#prepareSpare();
    if (this.#options.prepareBind) {
      if (this.#endpoint.kind === 'ipc-path') {
        // A takeover binds at once: check the directory now, and take the lock code's first run
        // (hashing, compiling Node's server code: milliseconds) off its clock.
        const path = this.#endpoint.path;
        this.#warmingLock = this.#checkDirectory(path)
          .then(() => (this.#closed ? undefined : warmPathLock(path)))
          .catch(() => undefined);
      }
      // V8 compiles a function on its first call: call bind() once now, returning at its first
      // line, so a takeover's bind does not pay for compiling it.
      this.#warmingUp = true;
      void this.bind();
      this.#warmingUp = false;
      // The same for publish() and release(), which return at once with no bound socket: a
      // primary releases once in its life, so its graceful exit would otherwise compile
      // release() on the clock of the handover.
      if (this.#pub === undefined) {
        void this.publish(WARM_UP_FRAMES);
        void this.release(WARM_UP_FRAMES);
      }
    }
  }

  async #receive(sub: zmq.Subscriber, handlers: TransportHandlers): Promise<void> {
    try {
      let burst = 0;
      for await (const frames of sub) {
        // A socket that always has a message ready resolves every receive at once, in
        // microtasks: yield to timers and I/O now and then, so a flood cannot starve them.
        if (++burst % YIELD_EVERY === 0) await yieldToEventLoop();
        const farewell = this.#farewell;
        if (farewell !== undefined && frames.length === 2 && frames[1]?.equals(farewell.payload)) {
          this.#farewell = undefined;
          farewell.resolve();
        }
        safe(() => handlers.onMessage(frames));
      }
    } catch {
      // The socket was closed under the iterator; nothing to deliver any more.
    }
  }

  hearOwnHeartbeats(on: boolean): void {
    const sub = this.#sub;
    if (sub === undefined || sub.closed || on === this.#hearingHeartbeats) return;
    this.#hearingHeartbeats = on;
    subscribeHeartbeats(sub, on);
  }

  probe(topic: string, on: boolean): void {
    const sub = this.#sub;
    if (sub === undefined || sub.closed) return;
    if (on) sub.subscribe(topic);
    else sub.unsubscribe(topic);
  }

  async bind(): Promise<BindOutcome> {
    if (this.#warmingUp) return { outcome: 'failed', detail: 'warm-up' };
    if (this.#closed) return { outcome: 'failed', detail: 'transport closed' };
    if (this.#pub !== undefined) return { outcome: 'bound' };
    if (this.#endpoint.kind === 'ipc-path') {
      if (!CLOSE_KEEPS_SOCKET_FILE) {
        throw new FailoverError(
          'ERR_FAILOVER_UNSUPPORTED',
          `filesystem ipc endpoints need libzmq 4.3.5 or later (zeromq here uses ${zmq.version}); use ipc://@NAME or tcp://127.0.0.1:PORT`,
        );
      }
      await this.#checkDirectory(this.#endpoint.path);
      const lock = await tryLockPath(this.#endpoint.path);
      if (lock === 'in-use') return { outcome: 'in-use' };
      this.#lock = lock;
    }
    const curve = this.#options.curve;
    if (curve !== undefined) {
      try {
        // Own key first: this node's SUB connects to its own endpoint as a client.
        this.#zap = await registerZapDomain([curve.publicKey, ...curve.allowedClientKeys]);
      } catch (error) {
        await this.#releaseLock();
        return { outcome: 'failed', detail: error instanceof Error ? error.message : String(error) };
      }
    }
    const pub = this.#spare ?? this.#newPublisher();
    this.#spare = undefined;
    if (curve !== undefined && this.#zap !== undefined) {
      pub.curveServer = true;
      pub.curveSecretKey = curve.serverSecretKey;
      pub.zapDomain = this.#zap.domain;
    }
    try {
      // A literal address binds in a few system calls: do it at once, on this thread. The async
      // bind goes through libuv's thread pool and back, which costs a takeover a millisecond or
      // more on a busy host. A host name may need a DNS lookup, which must not block the loop.
      if (bindsWithoutLookup(this.#endpoint)) bindSyncOnce(pub, this.#endpoint.address);
      else await bindOnce(pub, this.#endpoint.address);
    } catch (error) {
      await this.#releaseZap();
      await this.#releaseLock();
      const code = (error as { code?: string }).code;
      // A bind that failed leaves the socket as it was: keep it for the next attempt (without
      // CURVE settings, which are set again for each attempt).
      if (curve === undefined && !this.#closed && !pub.closed && this.#spare === undefined) this.#spare = pub;
      else pub.close();
      const outcome = bindFailure(code, this.#endpoint.kind);
      if (outcome === 'in-use') return { outcome };
      return { outcome, detail: error instanceof Error ? error.message : String(error) };
    }
    if (this.#closed) {
      pub.close();
      await this.#releaseZap();
      await this.#releaseLock();
      return { outcome: 'failed', detail: 'transport closed' };
    }
    this.#pub = pub;
    // Read (un)subscriptions from the next turn of the event loop: the claim that follows a bind
    // comes first, and the socket keeps them until then.
    setImmediate(() => {
      if (this.#pub === pub) void this.#subscriptions(pub);
    });
    if (this.#endpoint.kind === 'ipc-path') {
      const path = this.#endpoint.path;
      setImmediate(() => this.#recordSocketFile(pub, path));
    }
    return { outcome: 'bound' };
  }

  /** Notes the identity of the socket file `pub` has just bound at `path`. */
  #recordSocketFile(pub: zmq.XPublisher, path: string): void {
    if (this.#pub !== pub) return;
    this.#fileCheck = lstat(path, { bigint: true }).then(
      (st) => {
        this.#fileCheck = undefined;
        if (this.#pub !== pub) return;
        if (st.isSocket()) this.#socketFile = { pub, path, dev: st.dev, ino: st.ino };
        else this.#reportTheft({ found: 'replaced', detail: `${fileKind(st)} (inode ${st.ino}) is at ${path}, not this node's socket` });
      },
      (error: unknown) => {
        this.#fileCheck = undefined;
        if (this.#pub !== pub) return;
        const theft = missingFile(error, path);
        if (theft !== undefined) this.#reportTheft(theft);
      },
    );
  }

  /** Compares the endpoint's socket file with the one this node bound; reports a difference once. */
  #checkSocketFile(): void {
    const file = this.#socketFile;
    if (file === undefined || this.#fileCheck !== undefined || this.#pub !== file.pub) return;
    this.#fileCheck = lstat(file.path, { bigint: true }).then(
      (st): Theft | undefined =>
        st.dev === file.dev && st.ino === file.ino
          ? undefined
          : { found: 'replaced', detail: `${fileKind(st)} (inode ${st.ino}) is at ${file.path}; this node bound inode ${file.ino}` },
      (error: unknown) => missingFile(error, file.path),
    ).then((theft) => {
      this.#fileCheck = undefined;
      if (theft !== undefined && this.#socketFile === file && this.#pub === file.pub) this.#reportTheft(theft);
    });
  }

  #reportTheft(theft: Theft): void {
    this.#socketFile = undefined;
    const handlers = this.#handlers;
    if (handlers !== undefined) safe(() => handlers.onEvent({ type: 'endpointStolen', ...theft }));
  }

  /** Makes the endpoint's directory if missing and warns once if it is not private. */
  #checkDirectory(path: string): Promise<void> {
    this.#directoryChecked ??= checkPrivateDirectory(path).then((warning) => {
      if (warning !== undefined) this.#options.logger.warn(warning);
    });
    return this.#directoryChecked;
  }

  /**
   * An XPUB socket, not bound yet: a PUB that also reports its subscribers' (un)subscriptions,
   * which is how the primary learns who is connected (presence topics) without a second endpoint.
   */
  #newPublisher(): zmq.XPublisher {
    const pub = new zmq.XPublisher({
      linger: this.#options.linger,
      sendHighWaterMark: HIGH_WATER_MARK,
      receiveHighWaterMark: SUBSCRIPTION_HIGH_WATER_MARK,
      maxMessageSize: 1024,
      verbosity: 'allSubsUnsubs',
      handshakeInterval: this.#options.handshakeInterval,
      // Every send is tried at once (an XPUB drops at the high-water mark, it never blocks);
      // without this, zeromq.js defers every so many sends to a later turn of the event loop.
      sendTimeout: 0,
    });
    // A peer that fails the handshake (no CURVE, wrong server key, a client key not admitted).
    const refused = (): void => {
      this.#peersRefused++;
    };
    pub.events.on('handshake:error:auth', refused);
    pub.events.on('handshake:error:protocol', refused);
    pub.events.on('handshake:error:other', refused);
    return pub;
  }

  /**
   * Makes the socket the next {@link bind} will use, while nothing is waiting for it: creating a
   * socket and its monitor costs a takeover about half a millisecond otherwise. Not with CURVE,
   * whose bind registers a ZAP domain first anyway.
   */
  #prepareSpare(): void {
    if (this.#closed || this.#spare !== undefined || this.#options.curve !== undefined || !this.#options.prepareBind) return;
    const spare = this.#newPublisher();
    this.#spare = spare;
    // Run the send path once, so a new primary's first sends are not its first: an unbound
    // XPUB has no subscriber, and libzmq drops the message.
    void sendOn(spare, WARM_UP_FRAMES);
  }

  /**
   * {@link #prepareSpare} a little later: right after a release, this process is most likely
   * shutting down (no spare needed) or handing over (CPU the successor can use).
   */
  #prepareSpareLater(): void {
    if (this.#closed || this.#spareTimer !== undefined) return;
    this.#spareTimer = setTimeout(() => {
      this.#spareTimer = undefined;
      this.#prepareSpare();
    }, SPARE_DELAY_MS);
    this.#spareTimer.unref();
  }

  async #subscriptions(pub: zmq.XPublisher): Promise<void> {
    let welcomeQueued = false;
    const budget = new SubscriptionBudget(performance.now());
    try {
      let burst = 0;
      for await (const [frame] of pub) {
        // Same as the SUB loop: a flood of (un)subscriptions must not starve the heartbeat timer.
        if (++burst % YIELD_EVERY === 0) await yieldToEventLoop();
        // And no faster than the budget (subscription-budget.ts): while this waits, nothing more
        // is read, and libzmq takes in at most SUBSCRIPTION_HIGH_WATER_MARK per connection.
        let wait = budget.take(performance.now());
        if (wait > 0) {
          this.#subscriptionsDelayed++;
          while (wait > 0) {
            await new Promise((resolve) => setTimeout(resolve, wait).unref());
            if (this.#pub !== pub) return;
            wait = budget.take(performance.now());
          }
        }
        if (frame === undefined || frame.length < 2 || frame.length > 1 + MAX_PRESENCE_TOPIC_BYTES) {
          this.#subscriptionsIgnored++;
          continue;
        }
        const joined = frame[0] === 1;
        if (!joined && frame[0] !== 0) {
          this.#subscriptionsIgnored++;
          continue;
        }
        const handlers = this.#handlers;
        if (handlers === undefined) continue;
        if (joined && frame.length === 1 + TOPIC_PREFIX.length && frame.toString('latin1', 1) === TOPIC_PREFIX) {
          // A SUB connected. libzmq applied the subscription before it reported it, so a welcome
          // sent from now on reaches it. Reported on the next turn of the event loop: a SUB sends
          // its presence right after, usually in the same read, and the welcome's member list
          // then includes the newcomer. One report per turn however many arrived.
          if (!welcomeQueued) {
            welcomeQueued = true;
            setImmediate(() => {
              welcomeQueued = false;
              if (this.#pub === pub) safe(() => handlers.onSubscribed?.());
            });
          }
          continue;
        }
        const topic = frame.subarray(1).toString('utf8');
        if (!topic.startsWith(TOPIC_PREFIX)) safe(() => handlers.onPresence(joined, topic));
      }
    } catch {
      // Closed under the iterator.
    }
  }

  publish(frames: Frames): Promise<void> {
    const pub = this.#pub;
    if (pub === undefined) return Promise.resolve();
    const send = (): Promise<void> => sendOn(pub, frames);
    // zeromq.js allows one send at a time per socket: chain them. With none under way, send in
    // this call (sendTimeout 0 makes the send itself synchronous), so a new primary's
    // announcement has left before its onPromote runs.
    const next = this.#sendsPending === 0 ? send() : this.#sending.then(send);
    this.#sendsPending++;
    this.#sending = next.finally(() => {
      this.#sendsPending--;
    });
    // After the send has started: the check never delays a heartbeat.
    if (this.#socketFile !== undefined) this.#checkSocketFile();
    return next;
  }

  async release(farewell: Frames | undefined): Promise<void> {
    const pub = this.#pub;
    if (pub === undefined) return;
    // After the sends under way, and after any earlier release still waiting for them; with
    // neither, in this call: the farewell and the close start without waiting for a microtask.
    if (this.#sendsPending > 0 || this.#releasesWaiting > 0) {
      this.#releasesWaiting++;
      try {
        await this.#sending;
      } finally {
        this.#releasesWaiting--;
      }
      if (this.#pub !== pub) return;
    }
    this.#pub = undefined;
    this.#socketFile = undefined;
    // A filesystem endpoint's lock goes first, in this call: a successor that reads the farewell
    // must find the lock free, or it loses its bind and waits for a retry. Nothing is lost by
    // that order: nothing but the farewell is sent from here on, and our existing connections,
    // this node's SUB among them, still get it. It needs a libzmq that never unlinks the socket
    // file when it closes a listener (the successor's bind unlinks ours and makes its own, which
    // our close must leave alone): without one, no lock is ever taken (CLOSE_KEEPS_SOCKET_FILE).
    const unlocked = this.#releaseLock();
    let seen: Promise<void> | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (farewell !== undefined) {
      // Wait for the farewell's own copy only when this node's SUB can receive it: otherwise the
      // endpoint would stay held for farewellTimeout for nothing.
      if (this.#sub !== undefined && this.#subConnected && !this.#closed) {
        seen = new Promise<void>((resolve) => {
          this.#farewell = { payload: farewell[1], resolve };
          timer = setTimeout(resolve, this.#options.farewellTimeout);
        });
      }
      // With sendTimeout 0 the send happens in this call (an XPUB drops rather than blocks).
      void sendOn(pub, farewell);
    }
    // Close once the farewell came back through the endpoint to this node's own SUB (or after
    // farewellTimeout). Closing in the same tick as the send took the endpoint back a fraction
    // of a millisecond earlier, but now and then lost the tail of what was still queued for a
    // subscriber, farewell included (libzmq ended that connection's session before it had
    // written its queue out; docs/TRANSPORT.md, "Release", has the loop that shows it). A
    // successor that binds on reading the farewell may find the endpoint held that long more
    // and retries (its first retry after 1 ms).
    const closing = (async () => {
      await unlocked;
      if (seen !== undefined) {
        await seen;
        clearTimeout(timer);
        this.#farewell = undefined;
      }
      pub.close();
    })();
    this.#releasing = closing;
    await closing;
    if (this.#releasing === closing) this.#releasing = undefined;
    await this.#releaseZap();
    this.#prepareSpareLater();
  }

  /** What the endpoint refused or ignored so far. */
  counters(): TransportCounters {
    return {
      peersRefused: this.#peersRefused,
      subscriptionsIgnored: this.#subscriptionsIgnored,
      subscriptionsDelayed: this.#subscriptionsDelayed,
      handshakesFailed: this.#handshakesFailed,
      reconnects: this.#reconnects,
    };
  }

  async #releaseZap(): Promise<void> {
    const zap = this.#zap;
    this.#zap = undefined;
    if (zap !== undefined) await zap.release();
  }

  async #releaseLock(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    if (lock !== undefined) await lock.release();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#rearm !== undefined) clearTimeout(this.#rearm);
    this.#rearm = undefined;
    if (this.#spareTimer !== undefined) clearTimeout(this.#spareTimer);
    this.#spareTimer = undefined;
    await this.release(undefined);
    // A release still waiting for its farewell's copy: end the wait, the publisher closes now.
    const releasing = this.#releasing;
    if (releasing !== undefined) {
      this.#farewell?.resolve();
      await releasing;
    }
    this.#spare?.close();
    this.#spare = undefined;
    const sub = this.#sub;
    this.#sub = undefined;
    if (sub !== undefined) {
      sub.close();
    }
    await this.#loop;
    await this.#warmingLock;
    await this.#fileCheck;
  }
}

/** A filesystem endpoint's socket file as bound. */
interface SocketFile {
  readonly pub: zmq.XPublisher;
  readonly path: string;
  readonly dev: bigint;
  readonly ino: bigint;
}

/** What a check found instead of the socket file this node bound. */
type Theft = { readonly found: 'gone' | 'replaced'; readonly detail: string };

/** A failed lstat that means the file is gone; undefined for other errors (unknown: no report). */
function missingFile(error: unknown, path: string): Theft | undefined {
  const code = (error as { code?: string }).code;
  if (code !== 'ENOENT' && code !== 'ENOTDIR') return undefined;
  return { found: 'gone', detail: `no file at ${path} any more` };
}

function fileKind(st: { isSocket(): boolean; isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): string {
  if (st.isSocket()) return 'another socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a regular file';
  return 'another file';
}

/** Sends on an XPUB; never rejects (an XPUB drops rather than blocks, a closed one has nobody to tell). */
async function sendOn(pub: zmq.XPublisher, frames: Frames): Promise<void> {
  if (pub.closed) return;
  try {
    await pub.send(frames as unknown as Buffer[]);
  } catch {
    // Nothing to do: see above.
  }
}

/**
 * Turns a SUB's heartbeats on (all of `instance.`) or off (`instance.shutdown` alone, the
 * farewell): `hearOwnHeartbeats` here and in the bus adapter. It subscribes first, then drops the
 * other, so the farewell's topic is subscribed throughout. libzmq filters on the subscriber's side
 * too, so the change holds from this call on; the holder's XPUB filters once the
 * (un)subscription reached it, and ignores both (PROTOCOL.md section 5).
 */
export function subscribeHeartbeats(sub: zmq.Subscriber, on: boolean): void {
  if (on) {
    sub.subscribe(TOPIC_PREFIX);
    sub.unsubscribe(FAREWELL_TOPIC);
  } else {
    sub.subscribe(FAREWELL_TOPIC);
    sub.unsubscribe(TOPIC_PREFIX);
  }
}

/** What {@link ZmqTransport} sends on its spare socket to warm the send path (never delivered). */
const WARM_UP_FRAMES: Frames = [Buffer.from(`${TOPIC_PREFIX}warm-up`), Buffer.alloc(1)];

/** CURVE client options of the SUB socket (none without CURVE). */
function clientSecurity(curve: CurveOptions | undefined): Partial<zmq.Subscriber> {
  if (curve === undefined) return {};
  return { curveServerKey: curve.serverPublicKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey };
}

/** True when binding needs no name lookup: an ipc endpoint, or tcp with an IP address literal. */
export function bindsWithoutLookup(endpoint: Endpoint): boolean {
  if (endpoint.kind !== 'tcp') return true;
  return isIP(endpoint.host.replace(/^\[(.*)\]$/, '$1')) !== 0;
}

/**
 * Whether closing an ipc listener leaves its socket file alone, so that `release()` may free the
 * path lock before the farewell. True of libzmq 4.3.5, which zeromq v6 bundles (its listener
 * close removes only the directory of a wildcard `ipc://*` address; a test checks the
 * behaviour); not assumed of earlier releases, which zeromq.js may be built against: with one
 * of those, a filesystem endpoint is refused rather than released in an unsafe order.
 */
export const CLOSE_KEEPS_SOCKET_FILE = libzmqAtLeast(zmq.version, [4, 3, 5]);

/** `version` (dotted, like `zmq.version`) is at least `floor`, part by part. */
export function libzmqAtLeast(version: string, floor: readonly number[]): boolean {
  const parts = version.split('.').map(Number);
  for (let i = 0; i < floor.length; i++) {
    const part = parts[i] ?? 0;
    const min = floor[i] ?? 0;
    if (!Number.isFinite(part)) return false;
    if (part !== min) return part > min;
  }
  return true;
}

/**
 * libzmq now and then answers a failed bind with EAGAIN, which no bind fails with (a few times
 * in 3000 refused binds of a held address; it sends a monitor event on that path and the errno
 * is not kept, our best reading of it). The same socket is unchanged by a failed bind, so it is
 * tried once more for the real reason; that attempt may also succeed, if the address has just
 * been freed.
 */
function bindSyncOnce(pub: zmq.XPublisher, address: string): void {
  try {
    pub.bindSync(address);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EAGAIN') throw error;
    pub.bindSync(address);
  }
}

/** {@link bindSyncOnce} for addresses that need a lookup (the bind runs off this thread). */
async function bindOnce(pub: zmq.XPublisher, address: string): Promise<void> {
  try {
    await pub.bind(address);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EAGAIN') throw error;
    await pub.bind(address);
  }
}

/**
 * What a failed bind means. EADDRINUSE: the endpoint is held. EAGAIN twice in a row (see
 * {@link bindSyncOnce}) on tcp or abstract ipc: almost surely the same, and taking it for that
 * never promotes anyone; a lasting other cause shows on a later attempt. On a filesystem
 * endpoint the path lock has just been taken and libzmq unlinks the file before binding, so
 * EADDRINUSE cannot happen there and EAGAIN can only hide a real failure.
 */
export function bindFailure(code: string | undefined, kind: Endpoint['kind']): 'in-use' | 'failed' {
  if (code === 'EADDRINUSE') return 'in-use';
  if (code === 'EAGAIN' && kind !== 'ipc-path') return 'in-use';
  return 'failed';
}

/** How long after a release the next bind's socket is made (see #prepareSpareLater). */
const SPARE_DELAY_MS = 100;

/** Messages handled in a row before a receive loop lets timers and I/O run. */
const YIELD_EVERY = 32;

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // Handlers are the watcher's own and do not throw; this is a last guard.
  }
}
