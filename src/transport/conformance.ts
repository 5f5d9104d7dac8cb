/**
 * The transport conformance suite: what a {@link Transport} must do for the watcher's
 * one-primary guarantee to hold (docs/TRANSPORT.md), as tests a transport written by someone
 * else runs against itself. The project runs it against every transport it ships.
 *
 * It checks, on one fresh endpoint per test: an exclusive bind (a second binder is told
 * `in-use`); release (another binds once it resolves, and subscribers follow the new holder);
 * the disconnect signal (subscribers hear `disconnected` when the holder releases or closes, and
 * a farewell before it); ordering (every message a holder publishes reaches every connected
 * subscriber, itself included, once and in the order sent, up to its release); close (idempotent,
 * frees the endpoint, calls no handler afterwards, leaves no timer behind).
 *
 * It imports no test framework: give it your runner's `describe` and `it` (vitest, jest), and it
 * asserts with `node:assert`. Waits are bounded (`timeout`, per step) and poll; a transport on a
 * simulated clock gets `advance(ms)` calls instead of real time passing.
 *
 * @example
 * import { describe, it } from 'vitest';
 * import { transportConformance } from 'failover-watch/transport';
 *
 * transportConformance('my transport', () => {
 *   const endpoint = myFreshEndpoint();
 *   return { transport: () => new MyTransport(endpoint) };
 * }, { describe, it });
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { BindOutcome, Frames, Transport, TransportEvent } from './transport.js';

/** One test's endpoint, and the transports of the nodes on it. */
export interface ConformanceFixture {
  /** A new node's transport on this test's endpoint, not opened yet. Called up to three times a test. */
  transport(): Transport | Promise<Transport>;
  /**
   * For a transport on a simulated clock: move it `ms` on. The suite calls it while it waits,
   * instead of letting real time pass.
   */
  advance?(ms: number): void | Promise<void>;
  /** Called after each test, once the suite has closed every transport of it. */
  dispose?(): void | Promise<void>;
}

/** Makes a fixture with an endpoint no other test uses. */
export type ConformanceFactory = () => ConformanceFixture | Promise<ConformanceFixture>;

/** The test runner's functions the suite registers its tests with (vitest's and jest's fit). */
export interface ConformanceRunner {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>, timeout?: number): void;
}

/** Options of {@link transportConformance}. */
export interface ConformanceOptions extends Partial<ConformanceRunner> {
  /**
   * Longest wait for each expected outcome (a connection, a message, a free endpoint), ms.
   * @default 5000
   */
  readonly timeout?: number;
  /**
   * Check that no timer or immediate of the transport is left once it closed
   * (`process.getActiveResourcesInfo()`). Turn off where the runner keeps timers of its own.
   * @default true
   */
  readonly checkTimers?: boolean;
}

/** The topic of the suite's messages (the watcher's prefix, which every transport subscribes). */
const TOPIC = 'instance.conformance';
const ORDERED = 300;

/** What one node of a test heard, in order. */
type Heard = { readonly kind: 'message'; readonly frames: Buffer[] } | { readonly kind: 'event'; readonly event: TransportEvent };

interface Node {
  readonly transport: Transport;
  readonly heard: Heard[];
  /** Handler calls after close() resolved (must stay none). */
  readonly late: string[];
  closed: boolean;
}

const frame = (label: string): Frames => [Buffer.from(TOPIC), Buffer.from(label)];
const HEARTBEAT = 'instance.heartbeat';
const FAREWELL = 'instance.shutdown';
const topicFrame = (topic: string, label: string): Frames => [Buffer.from(topic), Buffer.from(label)];
/** The labels `node` read on `topic`, from its `from`-th record on. */
const labels = (node: Node, topic = TOPIC, from = 0): string[] =>
  node.heard.slice(from).flatMap((h) => (h.kind === 'message' && h.frames[0]?.toString() === topic ? [h.frames[1]?.toString() ?? ''] : []));
const events = (node: Node, type: TransportEvent['type']): number => node.heard.filter((h) => h.kind === 'event' && h.event.type === type).length;

/**
 * Registers the conformance tests of one transport.
 *
 * @param name the transport's name, the suite's title
 * @param factory makes a fixture (a fresh endpoint) per test
 * @param options the runner's `describe` and `it` (default: the global ones), the step timeout
 */
export function transportConformance(name: string, factory: ConformanceFactory, options: ConformanceOptions = {}): void {
  const globals = globalThis as unknown as Partial<ConformanceRunner>;
  const describe = options.describe ?? globals.describe;
  const it = options.it ?? globals.it;
  if (typeof describe !== 'function' || typeof it !== 'function') {
    throw new TypeError('transportConformance: pass your test runner\'s { describe, it } (no global ones found)');
  }
  const timeout = options.timeout ?? 5000;
  const checkTimers = options.checkTimers ?? true;

  /** Runs `body` with a fresh fixture; closes every node and disposes the fixture however it ends. */
  const withFixture = (body: (t: Kit) => Promise<void>) => async (): Promise<void> => {
    const timersBefore = checkTimers ? pendingTimers() : 0;
    const fixture = await factory();
    const kit = new Kit(fixture, timeout);
    try {
      await body(kit);
    } finally {
      await kit.closeAll();
      await fixture.dispose?.();
    }
    if (checkTimers) {
      // The suite's own waits have ended; what is left is the transport's.
      await kit.pause();
      assert.ok(pendingTimers() <= timersBefore, `timers left behind after close: ${pendingTimers()} > ${timersBefore}`);
    }
  };
  const test = (title: string, body: (t: Kit) => Promise<void>): void => it(title, withFixture(body), timeout * 6);

  describe(`transport conformance: ${name}`, () => {
    test('a second binder is told in-use', async (t) => {
      const a = await t.open();
      const b = await t.open();
      assert.deepEqual(await a.transport.bind(), { outcome: 'bound' });
      assert.deepEqual(await b.transport.bind(), { outcome: 'in-use' });
      assert.deepEqual(await a.transport.bind(), { outcome: 'bound' }, 'binding again while holding is bound');
      assert.deepEqual(await b.transport.bind(), { outcome: 'in-use' });
    });

    test('release frees the endpoint, and peers follow', async (t) => {
      const a = await t.open();
      const b = await t.open();
      const c = await t.open();
      assert.deepEqual(await a.transport.bind(), { outcome: 'bound' });
      await t.connected(a, c);
      await a.transport.release(undefined);
      await t.bindEventually(b);
      assert.deepEqual(await a.transport.bind(), { outcome: 'in-use' }, 'the former holder is now refused');
      // c follows the new holder without being told.
      await t.connected(b, c, 'b-');
    });

    test('close frees the endpoint and signals disconnect', async (t) => {
      const a = await t.open();
      const b = await t.open();
      assert.deepEqual(await a.transport.bind(), { outcome: 'bound' });
      await t.connected(a, b);
      const before = events(b, 'disconnected');
      await t.close(a);
      await t.until(() => events(b, 'disconnected') > before, 'b hears disconnected after the holder closed');
      await t.bindEventually(b);
    });

    test('delivers in order, to itself and to others', async (t) => {
      const a = await t.open();
      const b = await t.open();
      assert.deepEqual(await a.transport.bind(), { outcome: 'bound' });
      await t.connected(a, b);
      await t.connected(a, a, 'self-');
      const sends: Array<Promise<void>> = [];
      for (let i = 0; i < ORDERED; i++) sends.push(a.transport.publish(frame(`seq-${i}`)));
      await Promise.all(sends);
      const expected = Array.from({ length: ORDERED }, (_, i) => `seq-${i}`);
      const seq = (n: Node): string[] => labels(n).filter((l) => l.startsWith('seq-'));
      await t.until(() => seq(b).length >= ORDERED && seq(a).length >= ORDERED, `both read ${ORDERED} messages`);
      assert.deepEqual(seq(b), expected, 'b reads every message once, in order');
      assert.deepEqual(seq(a), expected, 'the holder reads its own, in order');
    });

    test('sends before a release arrive, then farewell, then disconnect', async (t) => {
      const a = await t.open();
      const b = await t.open();
      assert.deepEqual(await a.transport.bind(), { outcome: 'bound' });
      await t.connected(a, b);
      const start = b.heard.length;
      for (let i = 0; i < 50; i++) void a.transport.publish(frame(`last-${i}`));
      await a.transport.release(frame('farewell'));
      await t.until(() => b.heard.slice(start).some((h) => h.kind === 'event' && h.event.type === 'disconnected'), 'b hears disconnected');
      const after = b.heard.slice(start);
      const order = after.flatMap((h) =>
        h.kind === 'message' ? [h.frames[1]?.toString() ?? ''] : h.event.type === 'disconnected' ? ['<disconnected>'] : [],
      );
      const expected = [...Array.from({ length: 50 }, (_, i) => `last-${i}`), 'farewell', '<disconnected>'];
      assert.deepEqual(order.slice(0, expected.length), expected, 'messages, then the farewell, then the disconnect');
    });

    test('a holder stops and resumes reading heartbeats', async (t) => {
      // hearOwnHeartbeats(false): the subscriber reads no `instance.heartbeat` and still reads
      // `instance.shutdown` (the farewell); others are not affected. A transport without the
      // method delivers the holder's heartbeats all along.
      const a = await t.open();
      const b = await t.open();
      assert.deepEqual(await a.transport.bind(), { outcome: 'bound' });
      await t.connected(a, b);
      await t.connected(a, a, 'self-');
      const turn = a.transport.hearOwnHeartbeats?.bind(a.transport);
      turn?.(false);
      const start = { a: a.heard.length, b: b.heard.length };
      for (let i = 0; i < 20; i++) void a.transport.publish(topicFrame(HEARTBEAT, `off-${i}`));
      await a.transport.publish(topicFrame(FAREWELL, 'bye'));
      await t.until(() => labels(a, FAREWELL, start.a).includes('bye') && labels(b, FAREWELL, start.b).includes('bye'), 'both read the farewell topic');
      const offExpected = Array.from({ length: 20 }, (_, i) => `off-${i}`);
      assert.deepEqual(labels(b, HEARTBEAT, start.b), offExpected, 'another subscriber reads every heartbeat');
      assert.deepEqual(labels(a, HEARTBEAT, start.a), turn === undefined ? offExpected : [], 'the holder reads none of its own while off');
      turn?.(true);
      const resumed = a.heard.length;
      let n = 0;
      await t.until(async () => {
        if (labels(a, HEARTBEAT, resumed).length > 0) return true;
        await a.transport.publish(topicFrame(HEARTBEAT, `on-${n++}`));
        return false;
      }, 'the holder reads its heartbeats again once on');
    });

    test('close is final and idempotent', async (t) => {
      const a = await t.open();
      const b = await t.open();
      assert.deepEqual(await a.transport.bind(), { outcome: 'bound' });
      await t.connected(a, b);
      await t.close(a);
      await t.close(b);
      await a.transport.close();
      const outcome: BindOutcome = await a.transport.bind();
      assert.notEqual(outcome.outcome, 'bound', 'a closed transport binds nothing');
      await a.transport.publish(frame('after-close'));
      await a.transport.release(frame('after-close'));
      const c = await t.open();
      await t.bindEventually(c);
      await c.transport.publish(frame('late'));
      await t.pause();
      assert.deepEqual([...a.late, ...b.late], [], 'no handler runs after close()');
    });
  });
}

class Kit {
  readonly #fixture: ConformanceFixture;
  readonly #timeout: number;
  readonly #nodes: Node[] = [];

  constructor(fixture: ConformanceFixture, timeout: number) {
    this.#fixture = fixture;
    this.#timeout = timeout;
  }

  /** A new node's transport, opened, recording what it hears. */
  async open(): Promise<Node> {
    const transport = await this.#fixture.transport();
    const node: Node = { transport, heard: [], late: [], closed: false };
    this.#nodes.push(node);
    const hear = (h: Heard): void => {
      if (node.closed) node.late.push(h.kind === 'message' ? `message ${h.frames[0]?.toString() ?? ''}` : `event ${h.event.type}`);
      else node.heard.push(h);
    };
    await transport.open(
      {
        onMessage: (frames) => hear({ kind: 'message', frames }),
        onEvent: (event) => hear({ kind: 'event', event }),
        onPresence: () => undefined,
      },
      `presence.0.conformance-${this.#nodes.length}`,
    );
    return node;
  }

  async close(node: Node): Promise<void> {
    await node.transport.close();
    node.closed = true;
  }

  async closeAll(): Promise<void> {
    for (const node of this.#nodes) if (!node.closed) await this.close(node);
  }

  /** Lets time pass: real time, or the fixture's clock. */
  async pause(ms = 5): Promise<void> {
    if (this.#fixture.advance !== undefined) await this.#fixture.advance(ms);
    else await new Promise((resolve) => setTimeout(resolve, ms));
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Waits (bounded) until `predicate` holds. */
  async until(predicate: () => boolean | Promise<boolean>, what: string): Promise<void> {
    const simulated = this.#fixture.advance !== undefined;
    const started = performance.now();
    let waited = 0;
    for (let round = 0; round < 100_000; round++) {
      if (await predicate()) return;
      if (simulated ? waited >= this.#timeout : performance.now() - started >= this.#timeout) break;
      await this.pause(5);
      waited += 5;
    }
    assert.fail(`not within ${this.#timeout} ms: ${what}`);
  }

  /** `holder` publishes markers until `node` has read one: its subscription is in force. */
  async connected(holder: Node, node: Node, prefix = ''): Promise<void> {
    let n = 0;
    const marker = `${prefix}marker-`;
    await this.until(async () => {
      if (labels(node).some((l) => l.startsWith(marker))) return true;
      await holder.transport.publish(frame(`${marker}${n++}`));
      return false;
    }, `a subscriber reads the holder's ${marker}messages`);
  }

  /** `node` binds within the timeout (the endpoint may take a moment to be free). */
  async bindEventually(node: Node): Promise<void> {
    let last: BindOutcome | undefined;
    await this.until(async () => {
      last = await node.transport.bind();
      return last.outcome === 'bound';
    }, 'the endpoint is free for another binder');
    assert.deepEqual(last, { outcome: 'bound' });
  }
}

/** Timers and immediates of this process (Node 20's `process.getActiveResourcesInfo()`). */
function pendingTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length;
}
