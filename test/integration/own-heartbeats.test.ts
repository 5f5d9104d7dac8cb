/**
 * A primary at rest stops reading its own heartbeats once one came back on its subscriber's
 * connection (PROTOCOL.md 2.3), and reads every heartbeat again as it gives the endpoint up, so
 * that it follows its successor. Real ZeroMQ sockets on every endpoint kind; the primary's
 * transport is the real one, wrapped only to count what its subscriber hands over.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { Watcher } from '../../src/index.js';
import { createZmqTransport } from '../../src/transport.js';
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Counts {
  /** Heartbeats its subscriber delivered (by topic, any sender). */
  heartbeats: number;
  /** ...of which while the watcher had turned them off: must stay none. */
  whileOff: number;
  /** The watcher's `hearOwnHeartbeats` calls, in order. */
  readonly calls: boolean[];
}

/** The real transport, counting what its subscriber delivers and how the watcher turns it. */
function counting(endpoint: string): { transport: Transport; counts: Counts } {
  const inner = createZmqTransport(endpoint);
  const counts: Counts = { heartbeats: 0, whileOff: 0, calls: [] };
  const transport: Transport = {
    open: (handlers: TransportHandlers, presenceTopic?: string) =>
      inner.open(
        {
          ...handlers,
          onMessage: (frames) => {
            if (frames[0]?.toString() === 'instance.heartbeat') {
              counts.heartbeats++;
              if (counts.calls.at(-1) === false) counts.whileOff++;
            }
            handlers.onMessage(frames);
          },
        },
        presenceTopic,
      ),
    probe: (topic, on) => inner.probe(topic, on),
    hearOwnHeartbeats: (on) => {
      counts.calls.push(on);
      inner.hearOwnHeartbeats?.(on);
    },
    bind: () => inner.bind(),
    publish: (frames) => inner.publish(frames),
    release: (farewell) => inner.release(farewell),
    close: () => inner.close(),
    counters: () => inner.counters?.() ?? { peersRefused: 0, subscriptionsIgnored: 0, handshakesFailed: 0, reconnects: 0 },
  };
  return { transport, counts };
}

/** Resolves once `predicate` holds, checking every 5 ms; fails after `ms`. */
async function until(predicate: () => boolean, what: string, ms = 10_000, detail?: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what} ${detail?.() ?? ''}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const endpoints = async (): Promise<Array<[string, string]>> => [
  ['tcp', `tcp://127.0.0.1:${await freePort()}`],
  ['ipc abstract', `ipc://@${uniqueIpc('own-beats')}`],
];

describe('a primary and its own heartbeats', () => {
  it('stops reading them at rest, reads all after a step-down', async () => {
    for (const [kind, endpoint] of await endpoints()) {
      const workdir = tempWorkdir();
      cleanups.push(workdir.cleanup);
      const timing = { heartbeatInterval: 20, heartbeatTimeout: 200, rehearsals: 0, enabled: true };
      const own = counting(endpoint);
      const a = new Watcher({ endpoint, instanceId: 'a', workdir: workdir.path, role: 'primary', ...timing }, { transport: own.transport });
      const b = new Watcher({ endpoint, instanceId: 'b', workdir: workdir.path, role: 'auto', ...timing });
      cleanups.push(() => b.shutdown(), () => a.shutdown());
      await a.start();
      await b.start();
      await until(() => b.status().primary?.instanceId === 'a', `${kind}: b follows a`);
      await until(() => a.health().ok, `${kind}: a is healthy`);

      // At rest: b reads 25 more heartbeats of a; a's own subscriber reads one per time the
      // watcher turned them on (its connection events, which may arrive after the first
      // heartbeat: then it reads one more and turns them off again), and none while off. a
      // stays healthy: every heartbeat since goes through the connection that carried one back.
      const mine = own.counts.heartbeats;
      const calls = own.counts.calls.length;
      const seen = b.status().heartbeatsSeen;
      await until(() => b.status().heartbeatsSeen >= seen + 25, `${kind}: b reads 25 heartbeats`);
      const turnedOn = own.counts.calls.slice(calls).filter((on) => on).length;
      expect(own.counts.heartbeats - mine, kind).toBeLessThanOrEqual(turnedOn + (own.counts.calls[calls - 1] === false ? 0 : 1));
      expect(turnedOn, kind).toBeLessThanOrEqual(2);
      expect(own.counts.calls.at(-1), kind).toBe(false);
      expect(own.counts.whileOff, kind).toBe(0);
      expect(a.health(), kind).toMatchObject({ ok: true });
      expect(a.status().ownHeartbeatAgeMs, kind).toBeLessThanOrEqual(2 * timing.heartbeatInterval + 250);

      // a hands over to b: it reads every heartbeat again, so it follows b.
      a.stepDown();
      await until(() => b.role === 'primary', `${kind}: b takes over`, 10_000, () => JSON.stringify({ a: a.status(), b: b.status() }));
      await until(() => a.status().primary?.instanceId === 'b', `${kind}: a follows b`);
      const following = own.counts.heartbeats;
      await until(() => own.counts.heartbeats >= following + 5, `${kind}: a reads b's heartbeats`);
      expect(own.counts.calls.at(-1), kind).toBe(true);
      expect(own.counts.whileOff, kind).toBe(0);
      expect(a.health(), kind).toMatchObject({ ok: true, reason: 'following b' });
      await b.shutdown();
      await a.shutdown();
    }
  });
});
