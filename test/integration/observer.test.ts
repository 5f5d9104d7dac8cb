/**
 * A node whose tcp endpoint is not an address of its own host is an observer: it follows the
 * primary, never binds, and says so (status, liveNodes, primaryLost). Another host cannot be used
 * here (tests send nothing off loopback), so the observer is told by an injected locality probe
 * that 127.0.0.2 is not one of its addresses; the primary and a candidate secondary really bind
 * 127.0.0.2. Real sockets, in this process; every wait is bounded.
 */
import { afterEach, expect, it } from 'vitest';
import { freePort, tempWorkdir } from '../../harness/cluster.js';
import { Watcher, type PrimaryChangedEvent, type PrimaryLostEvent, type WatcherEvents } from '../../src/index.js';
import { parseEndpoint, type Endpoint } from '../../src/transport/zmq/endpoint.js';
import { ZmqTransport } from '../../src/transport/zmq/zmq-transport.js';
import type { Transport } from '../../src/transport/transport.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function next<K extends keyof WatcherEvents>(w: Watcher, name: K, pred: (e: Parameters<WatcherEvents[K]>[0]) => boolean, timeout = 5000): Promise<Parameters<WatcherEvents[K]>[0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.off(name, on as never);
      reject(new Error(`no matching ${name} within ${timeout} ms`));
    }, timeout);
    const on = (e: Parameters<WatcherEvents[K]>[0]): void => {
      if (!pred(e)) return;
      clearTimeout(timer);
      w.off(name, on as never);
      resolve(e);
    };
    w.on(name, on as never);
  });
}

async function until(cond: () => boolean, timeout: number, what: string): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The real ZeroMQ transport, counting the binds the watcher asks of it. */
function countingTransport(endpoint: Endpoint): { transport: Transport; binds: () => number } {
  const real = new ZmqTransport(endpoint);
  let binds = 0;
  const transport: Transport = {
    open: (handlers, presence) => real.open(handlers, presence),
    probe: (topic, on) => real.probe(topic, on),
    bind: () => {
      binds++;
      return real.bind();
    },
    publish: (frames) => real.publish(frames),
    release: (farewell) => real.release(farewell),
    close: () => real.close(),
    counters: () => real.counters(),
  };
  return { transport, binds: () => binds };
}

it('an observer follows, never binds and never promotes', async () => {
  const work = tempWorkdir();
  cleanups.push(work.cleanup);
  const endpoint = `tcp://127.0.0.2:${await freePort()}`;
  const timing = { heartbeatInterval: 50, heartbeatTimeout: 400, workdir: work.path, rehearsals: 0 };
  const primary = new Watcher({ ...timing, endpoint, instanceId: 'p', role: 'primary' });
  const candidate = new Watcher({ ...timing, endpoint, instanceId: 's', role: 'secondary', enabled: true, priority: 5 });
  const infos: string[] = [];
  const logger = { debug() {}, info: (m: string) => void infos.push(m), warn() {}, error() {} };
  const parsed = parseEndpoint(endpoint) as Endpoint;
  const counted = countingTransport(parsed);
  const observer = new Watcher(
    // Failover on and the best priority: only being an observer keeps it from taking over.
    { ...timing, endpoint, instanceId: 'obs', role: 'auto', enabled: true, priority: 0, logger },
    { transport: counted.transport, locality: { isLocalAddress: (a) => a === '127.0.0.1', lookup: async () => [] } },
  );
  cleanups.unshift(() => Promise.all([primary, candidate, observer].map((w) => w.shutdown())).then(() => undefined));

  await primary.start();
  const following = next(observer, 'primaryChanged', (e: PrimaryChangedEvent) => e.instanceId === 'p');
  await Promise.all([candidate.start(), observer.start()]);
  await following;
  expect(observer.role).toBe('secondary');
  expect(infos.filter((m) => m.includes('observes only'))).toHaveLength(1);
  expect(observer.status()).toMatchObject({ observer: true, enabled: true });
  expect(candidate.status().observer).toBe(false);
  expect((await observer.liveNodes()).find((n) => n.self)).toMatchObject({ instanceId: 'obs', eligible: false });
  expect(observer.formatStatus()).toContain('observer');
  // It announces no presence: the primary lists the candidate, never the observer.
  for (let i = 0; i < 100 && !(await primary.liveNodes()).some((n) => n.instanceId === 's'); i++) await new Promise((r) => setTimeout(r, 50));
  expect((await primary.liveNodes()).map((n) => n.instanceId)).not.toContain('obs');

  const lost = next(observer, 'primaryLost', () => true);
  const taken = next(observer, 'primaryChanged', (e: PrimaryChangedEvent) => e.instanceId === 's');
  await primary.shutdown();
  const event = (await lost) as PrimaryLostEvent;
  expect(event).toMatchObject({ instanceId: 'p', cause: 'shutdown', willPromote: false, reason: 'observer' });
  // The candidate (priority 5, behind the observer's 0) took over; the observer follows it.
  await taken;
  expect(candidate.role).toBe('primary');
  expect(observer.role).toBe('secondary');
  expect(counted.binds()).toBe(0);
  expect(observer.status().lostRaces).toBe(0);
});
