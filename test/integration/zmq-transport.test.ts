/**
 * The ZeroMQ transport on its own, with real sockets (abstract ipc endpoints unique per test, and
 * one filesystem endpoint in a temporary directory):
 * what a takeover's speed rests on.
 */
import * as zmq from 'zeromq';
import { afterEach, expect, it } from 'vitest';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { encode } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import type { TransportHandlers } from '../../src/transport/transport.js';
import { parseEndpoint, type Endpoint } from '../../src/transport/zmq/endpoint.js';
import { bindFailure, bindsWithoutLookup, CLOSE_KEEPS_SOCKET_FILE, libzmqAtLeast, ZmqTransport } from '../../src/transport/zmq/zmq-transport.js';

const handlers: TransportHandlers = { onMessage: () => {}, onPresence: () => {}, onEvent: () => {} };
const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close();
});

function endpoint(): Endpoint {
  const e = parseEndpoint(uniqueIpc('fw-transport'));
  if (typeof e === 'string') throw new Error(e);
  return e;
}
const frames = (topic: 'instance.heartbeat' | 'instance.shutdown', seq: number) =>
  encode(topic, { version: PROTOCOL_VERSION, instanceId: 't', epoch: 1, seq, sentAt: 0, pid: 1, host: 'h' });

/** A raw subscriber, connected and known to receive (bounded wait). */
async function subscriber(e: Endpoint, t: ZmqTransport): Promise<zmq.Subscriber> {
  const sub = new zmq.Subscriber({ linger: 0, reconnectInterval: 5 });
  open.push(sub);
  sub.subscribe('instance.');
  sub.connect(e.address);
  sub.receiveTimeout = 20;
  for (let i = 0; i < 200; i++) {
    await t.publish(frames('instance.heartbeat', i));
    try {
      await sub.receive();
      break;
    } catch {
      // Not connected or not subscribed yet: try again (bounded).
    }
  }
  sub.receiveTimeout = 2000;
  return sub;
}

/** A bound transport and a raw subscriber that receives from it, with nothing queued. */
async function boundWithSubscriber(): Promise<{ t: ZmqTransport; sub: zmq.Subscriber }> {
  const e = endpoint();
  const t = new ZmqTransport(e);
  open.push(t);
  await t.open(handlers);
  expect((await t.bind()).outcome).toBe('bound');
  const sub = await subscriber(e, t);
  while (sub.readable) await sub.receive();
  return { t, sub };
}

/** Two transports open on one endpoint, `holder` bound. */
async function heldEndpoint(): Promise<{ e: Endpoint; holder: ZmqTransport; other: ZmqTransport }> {
  const e = endpoint();
  const holder = new ZmqTransport(e);
  const other = new ZmqTransport(e);
  open.push(holder, other);
  await holder.open(handlers);
  await other.open(handlers);
  expect((await holder.bind()).outcome).toBe('bound');
  return { e, holder, other };
}

/**
 * Whether a message reaches `sub` while this thread never yields (busy, bounded to 1 s): only a
 * send made before the caller's last synchronous step can arrive.
 */
function readableWithoutYielding(sub: zmq.Subscriber): boolean {
  const until = performance.now() + 1000;
  while (!sub.readable && performance.now() < until) {
    // busy on purpose, bounded
  }
  return sub.readable;
}

it('publish() hands the message to libzmq within the call when no send is under way', async () => {
  const { t, sub } = await boundWithSubscriber();

  void t.publish(frames('instance.heartbeat', 1000));
  // No turn of the event loop from here: only a send made inside publish() can be queued.
  expect(readableWithoutYielding(sub)).toBe(true);
});

it('release() delivers the farewell and the endpoint is free within milliseconds; refused binds keep the socket for the next try', async () => {
  const { e, holder, other: successor } = await heldEndpoint();
  expect((await successor.bind()).outcome).toBe('in-use');
  expect((await successor.bind()).outcome).toBe('in-use');
  const sub = await subscriber(e, holder);
  while (sub.readable) await sub.receive();

  const farewell = frames('instance.shutdown', 2000);
  await holder.release(farewell);
  const [topic, payload] = await sub.receive();
  expect(topic?.toString()).toBe('instance.shutdown');
  expect(Buffer.compare(payload as Buffer, farewell[1])).toBe(0);
  // libzmq closes the listener a few of its thread hops after close(), usually before release()
  // resolves but not always: the endpoint must be free within a few milliseconds, and a
  // refused attempt must leave the successor able to try again.
  const started = performance.now();
  let outcome = (await successor.bind()).outcome;
  while (outcome === 'in-use' && performance.now() - started < 1000) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    outcome = (await successor.bind()).outcome;
  }
  expect(outcome).toBe('bound');
  expect(performance.now() - started).toBeLessThan(250);
});

it('what a failed bind means: EADDRINUSE is in-use; EAGAIN (libzmq lost the reason) too, except on a filesystem endpoint', () => {
  expect(bindFailure('EADDRINUSE', 'tcp')).toBe('in-use');
  expect(bindFailure('EADDRINUSE', 'ipc-path')).toBe('in-use');
  expect(bindFailure('EAGAIN', 'tcp')).toBe('in-use');
  expect(bindFailure('EAGAIN', 'ipc-abstract')).toBe('in-use');
  expect(bindFailure('EAGAIN', 'ipc-path')).toBe('failed');
  expect(bindFailure('EACCES', 'ipc-path')).toBe('failed');
  expect(bindFailure(undefined, 'tcp')).toBe('failed');
});

it('filesystem endpoints need a libzmq known to keep the socket file when it closes a listener (by version)', () => {
  expect(libzmqAtLeast('4.3.5', [4, 3, 5])).toBe(true);
  expect(libzmqAtLeast('4.3.6', [4, 3, 5])).toBe(true);
  expect(libzmqAtLeast('4.10.0', [4, 3, 5])).toBe(true);
  expect(libzmqAtLeast('4.3.4', [4, 3, 5])).toBe(false);
  expect(libzmqAtLeast('4.2.5', [4, 3, 5])).toBe(false);
  expect(libzmqAtLeast('garbage', [4, 3, 5])).toBe(false);
  // The bundled libzmq is one of those (the last test of this file checks the behaviour itself).
  expect(CLOSE_KEEPS_SOCKET_FILE).toBe(true);
});

it('a held endpoint answers in-use to every bind, also when libzmq answers EAGAIN', async () => {
  const { other } = await heldEndpoint();
  // In thousands of refused binds libzmq answers EAGAIN a few times instead of EADDRINUSE (1-3
  // in 3000 on a 2-core VM): a smoke check of the retry in bindSyncOnce, which the unit test
  // above pins down (this one passes without the fix about one run in eight). The turn of the
  // event loop between attempts matters: it lets the socket's monitor events drain, and
  // without it libzmq blocks the thread once about a thousand of them are queued.
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const { outcome } = await other.bind();
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(Object.fromEntries(outcomes)).toEqual({ 'in-use': 3000 });
});

it('release() hands the farewell to libzmq within the call when no send is under way', async () => {
  const { t, sub } = await boundWithSubscriber();
  await new Promise((resolve) => setTimeout(resolve, 5)); // the subscriber's sends have settled

  const released = t.release(frames('instance.shutdown', 3000));
  // No turn of the event loop from here: only a farewell sent inside release() can be queued.
  expect(readableWithoutYielding(sub)).toBe(true);
  await released;
  const [topic] = await sub.receive();
  expect(topic?.toString()).toBe('instance.shutdown');
});

it('a release that waits for a send under way is not overtaken by a later one: its farewell still goes out', async () => {
  const { t, sub } = await boundWithSubscriber();

  const sent = t.publish(frames('instance.heartbeat', 4000));
  const first = t.release(frames('instance.shutdown', 4001)); // waits for that send
  await sent; // the send is done, but the first release has not resumed yet
  const second = t.release(undefined);
  await Promise.all([first, second]);
  const topics: string[] = [];
  while (!topics.includes('instance.shutdown')) {
    const [topic] = await sub.receive(); // receiveTimeout 2000 ms: a missing farewell fails here
    topics.push(String(topic));
  }
  expect(topics).toEqual(['instance.heartbeat', 'instance.shutdown']);
});

it('a filesystem ipc endpoint: the directory is made (0700) when the transport opens, and the lock decides the bind', async () => {
  const tmp = tempWorkdir('fw-transport-');
  open.push({ close: () => tmp.cleanup() });
  const dir = join(tmp.path, 'run', 'app');
  const e = parseEndpoint(`ipc://${join(dir, 'cluster.sock')}`) as Endpoint;
  const first = new ZmqTransport(e);
  const second = new ZmqTransport(e);
  open.push(first, second);
  await first.open(handlers);
  // Made in the background when it opens, before any bind: wait for it (bounded).
  const until = performance.now() + 2000;
  while (!existsSync(dir) && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  await second.open(handlers);
  expect((await first.bind()).outcome).toBe('bound');
  expect((await second.bind()).outcome).toBe('in-use');
  await first.release(undefined);
  expect((await second.bind()).outcome).toBe('bound');
});

it('binds literal addresses without a lookup, host names with one', () => {
  const parse = (a: string): Endpoint => parseEndpoint(a) as Endpoint;
  expect(bindsWithoutLookup(parse('tcp://127.0.0.1:5555'))).toBe(true);
  expect(bindsWithoutLookup(parse('tcp://[::1]:5555'))).toBe(true);
  expect(bindsWithoutLookup(parse('ipc://@name'))).toBe(true);
  expect(bindsWithoutLookup(parse('ipc:///tmp/x.sock'))).toBe(true);
  expect(bindsWithoutLookup(parse('tcp://localhost:5555'))).toBe(false);
});

it('a filesystem ipc endpoint: closing a listener never removes the socket file that a successor bound since', async () => {
  // release() frees the path lock before the farewell goes out, so a successor may bind (unlink
  // our file, make its own) while libzmq is still closing our listener. That is safe only
  // because libzmq's close does not unlink the path: checked here on the real library.
  const tmp = tempWorkdir('fw-transport-');
  open.push({ close: () => tmp.cleanup() });
  const path = join(tmp.path, 'cluster.sock');
  const address = `ipc://${path}`;
  const old = new zmq.Publisher({ linger: 0 });
  const successor = new zmq.Publisher({ linger: 0 });
  open.push(successor, old);
  await old.bind(address);
  successor.bindSync(address); // unlinks the old file, binds a new one
  // unbind() ends in the same listener close as the socket's close(), and its event tells when
  // that close has run.
  const oldListenerClosed = new Promise<void>((resolve) => {
    old.events.on('close', () => resolve());
  });
  await old.unbind(address);
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    oldListenerClosed,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('no close event within 2 s')), 2000);
    }),
  ]).finally(() => clearTimeout(timer)); // libzmq's listener close has run

  expect(existsSync(path)).toBe(true);
  const sub = new zmq.Subscriber({ linger: 0, reconnectInterval: 5, receiveTimeout: 20 });
  open.push(sub);
  sub.subscribe('');
  sub.connect(address);
  let received: string | undefined;
  for (let i = 0; i < 200 && received === undefined; i++) {
    await successor.send('from-successor');
    try {
      received = String((await sub.receive())[0]);
    } catch {
      // Not connected or not subscribed yet: try again (bounded).
    }
  }
  expect(received).toBe('from-successor');
});
