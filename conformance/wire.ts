/**
 * The kit's own ZeroMQ sockets: a squatter that binds the endpoint and publishes what a scenario
 * scripts (valid messages from made-up nodes, stale or higher epochs, garbage), a listener that
 * connects like a node and decodes what the primary publishes, and the path lock at its
 * PROTOCOL.md 2.2 address. Messages are encoded by the library's codec, whose output
 * PROTOCOL.md section 8 documents byte for byte.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import * as zmq from 'zeromq';
import { decode, encode } from '../src/protocol/codec.js';
import type { Topic, WireMessage } from '../src/protocol/messages.js';
import { hostNow } from '../harness/child-runtime.js';

/** The path of an `ipc:///PATH` endpoint, or undefined for other forms. */
export function endpointPath(endpoint: string): string | undefined {
  return endpoint.startsWith('ipc:///') ? endpoint.slice('ipc://'.length) : undefined;
}

/** Bytes of `sun_path` the path lock's address fills (PROTOCOL.md 2.2). */
export const LOCK_ADDRESS_BYTES = 108;

/**
 * The path lock's abstract address for PATH, written from PROTOCOL.md 2.2 (not taken from the
 * library): a NUL, `failover-watch-lock-`, the first 40 lowercase hex digits of SHA-256(PATH),
 * then hyphens up to 108 bytes.
 */
export function lockAddress(path: string): string {
  const name = `\0failover-watch-lock-${createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 40)}`;
  return name.padEnd(LOCK_ADDRESS_BYTES, '-');
}

/**
 * Binds the path lock's address as a unix stream socket (Node's `net` binds a name that fills
 * `sun_path` byte for byte on every version, see PROTOCOL.md 2.2). Resolves to the holder, or
 * `'in-use'` when someone holds it.
 */
export function holdLock(path: string): Promise<{ release(): void } | 'in-use'> {
  const server: Server = createServer((connection) => connection.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      server.close();
      if (error.code === 'EADDRINUSE') resolve('in-use');
      else reject(error);
    });
    server.listen({ path: lockAddress(path), exclusive: true }, () => resolve({ release: () => server.close() }));
  });
}

/** A made-up node's fields for a message the kit publishes. */
export interface GhostFields {
  readonly instanceId: string;
  readonly epoch: number;
  readonly priority?: number;
  readonly members?: ReadonlyArray<readonly [string, number]>;
}

/** The kit bound to the endpoint as a primary of its own, publishing what a scenario scripts. */
export class Squatter {
  readonly endpoint: string;
  readonly #pub: zmq.Publisher;
  #seq = 0;
  #locks: Array<() => void> = [];
  #closed = false;
  #saidGoodbye = false;

  private constructor(endpoint: string, pub: zmq.Publisher) {
    this.endpoint = endpoint;
    this.#pub = pub;
  }

  /**
   * Binds `endpoint` (holding the path lock first for `ipc:///PATH`). Throws when the endpoint
   * is taken.
   */
  static async bind(endpoint: string): Promise<Squatter> {
    const locks: Array<() => void> = [];
    const path = endpointPath(endpoint);
    if (path !== undefined) {
      const lock = await holdLock(path);
      if (lock === 'in-use') throw new Error(`squatter: the path lock of ${endpoint} is held`);
      locks.push(() => lock.release());
    }
    const pub = new zmq.Publisher({ linger: 200, sendHighWaterMark: 10_000 });
    try {
      await pub.bind(endpoint);
    } catch (error) {
      pub.close();
      for (const release of locks) release();
      throw error;
    }
    const squatter = new Squatter(endpoint, pub);
    squatter.#locks = locks;
    return squatter;
  }

  /** Publishes one valid message from the made-up node `fields`. */
  async publish(topic: Topic, fields: GhostFields): Promise<void> {
    if (topic === 'instance.shutdown') this.#saidGoodbye = true;
    await this.#pub.send(
      encode(topic, {
        version: 1,
        instanceId: fields.instanceId,
        epoch: fields.epoch,
        seq: ++this.#seq,
        sentAt: Date.now(),
        pid: 4242,
        host: hostname(),
        heartbeatInterval: 20,
        priority: fields.priority ?? 1,
        ...(topic === 'instance.heartbeat' ? { members: fields.members ?? [] } : {}),
      }),
    );
  }

  /** Publishes raw frames as they are (garbage). */
  async publishRaw(frames: readonly Buffer[]): Promise<void> {
    await this.#pub.send(frames as Buffer[]);
  }

  /**
   * Heartbeats from `fields` every 20 ms until `until` settles (ZeroMQ drops what is published
   * before a subscriber is connected, so one message is not enough), bounded by `timeout` ms.
   */
  async heartbeatUntil<T>(fields: GhostFields, until: Promise<T>, timeout: number): Promise<T> {
    let done = false;
    const settled = until.finally(() => (done = true));
    settled.catch(() => undefined);
    const deadline = hostNow() + timeout;
    while (!done && hostNow() < deadline) {
      await this.publish('instance.heartbeat', fields);
      await new Promise((r) => setTimeout(r, 20));
    }
    return await settled;
  }

  /**
   * Unbinds and closes (no `instance.shutdown`: that is for the scenario to send first). After a
   * shutdown it lingers up to 200 ms so the message still leaves; otherwise it drops what is
   * queued and frees the endpoint at once, like a crash.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#saidGoodbye) this.#pub.linger = 0;
    this.#pub.close();
    for (const release of this.#locks) release();
  }
}

/** A decoded message as the kit's listener received it. */
export interface Heard {
  readonly message: WireMessage;
  readonly at: number;
}

/** A SUB socket connected to the endpoint like a node's, subscribed to `instance.`, decoding. */
export class Listener {
  readonly heard: Heard[] = [];
  readonly #sub: zmq.Subscriber;
  #waiters = new Set<{ pred: (h: Heard) => boolean; resolve: (h: Heard) => void }>();
  #closed = false;

  constructor(endpoint: string) {
    this.#sub = new zmq.Subscriber({ linger: 0, reconnectInterval: 10, reconnectMaxInterval: 100 });
    this.#sub.connect(endpoint);
    this.#sub.subscribe('instance.');
    void this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      for await (const frames of this.#sub) {
        const result = decode(frames);
        if (!result.ok) continue;
        const heard = { message: result.message, at: hostNow() };
        this.heard.push(heard);
        for (const w of this.#waiters) {
          if (w.pred(heard)) {
            this.#waiters.delete(w);
            w.resolve(heard);
          }
        }
      }
    } catch {
      // Closed.
    }
  }

  /** Adds a subscription (a probe, for instance). */
  subscribe(topic: string): void {
    this.#sub.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.#sub.unsubscribe(topic);
  }

  /** The next message (from now on) matching `pred`, within `timeout` ms. */
  next(pred: (h: Heard) => boolean, timeout: number, what: string): Promise<Heard> {
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (h: Heard) => {
          clearTimeout(timer);
          resolve(h);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`kit listener: no ${what} within ${timeout} ms (heard ${this.heard.length} messages)`));
      }, timeout);
      this.#waiters.add(waiter);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sub.close();
  }
}
