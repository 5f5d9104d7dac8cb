/**
 * The `Cluster` driver on a FakeClock with the in-memory lease store (same semantics as the Lua
 * scripts): exact timings of drift step-down, crash takeover and abandoned onStop, without Redis
 * and without waiting. The real store is covered by test/integration/redis-*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock, run, type Cluster, type ClusterConfig, type RoleChange } from '../../../src/redis.js';
import { MemoryLeaseServer, MemoryLeaseStore } from '../../../src/transport/redis/memory-lease-store.js';

const BASE = { leaseTTL: 1000, maxDrift: 500, tickInterval: 100 } as const;

/** Lets every pending promise, microtask and immediate run (the fake clock does not move). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

class World {
  readonly clock = new FakeClock(0, 1_700_000_000_000);
  readonly server = new MemoryLeaseServer(() => this.clock.wallNow());
  readonly stores = new Map<string, MemoryLeaseStore>();
  readonly changes: Array<RoleChange & { t: number }> = [];
  readonly warnings: string[] = [];

  async node(nodeId: string, extra: Partial<ClusterConfig> = {}): Promise<Cluster> {
    const store = new MemoryLeaseStore(this.server, {
      nodeId,
      session: `${nodeId}-session`,
      priority: extra.nodePriority ?? 1,
      strategy: extra.strategy ?? 'race',
      leaseTTL: extra.leaseTTL ?? BASE.leaseTTL,
      eventsLimit: 100,
    });
    this.stores.set(nodeId, store);
    const logger = { debug() {}, info() {}, warn: (m: string) => void this.warnings.push(m), error: (m: string) => void this.warnings.push(m) };
    const promise = run({ project: 'unit', nodeId, clock: this.clock, logger, ...BASE, ...extra }, { store, random: () => 0.5 });
    const cluster = await promise;
    cluster.on('roleChanged', (c) => void this.changes.push({ ...c, t: this.clock.now() }));
    await flush();
    return cluster;
  }

  /** Moves the fake clock in 5 ms steps, letting async work land at each step. */
  async advance(ms: number): Promise<void> {
    for (let done = 0; done < ms; done += 5) {
      this.clock.advance(Math.min(5, ms - done));
      await flush();
    }
  }

  /** The first change matching, or undefined. */
  find(nodeId: string, to: string): (RoleChange & { t: number }) | undefined {
    return this.changes.find((c) => c.instanceId === nodeId && c.to === to);
  }
}

describe('Cluster on a fake clock', () => {
  it('hands over on close without any time passing (pub/sub), revision + 1', async () => {
    const w = new World();
    const a = await w.node('a');
    const b = await w.node('b');
    expect([a.role, b.role]).toEqual(['primary', 'secondary']);
    await a.close();
    await flush();
    expect(w.clock.now()).toBe(0);
    expect(b.role).toBe('primary');
    expect(w.find('b', 'primary')).toMatchObject({ reason: 'handover', epoch: 2 });
    await b.close();
  });

  it('a leader leaving is stamped when it decided to, not after a release that held the thread', async () => {
    const w = new World();
    const a = await w.node('a');
    const b = await w.node('b');
    const store = w.stores.get('a')!;
    const release = store.release.bind(store);
    let releaseEnteredAt: number | undefined;
    store.release = (reason, deregister) => {
      releaseEnteredAt = w.clock.wallNow();
      w.clock.advance(30); // the thread held for 30 ms, as a preempted call can be
      return release(reason, deregister);
    };
    await a.close();
    await flush();
    const end = w.changes.find((c) => c.instanceId === 'a' && c.from === 'primary');
    expect(releaseEnteredAt).toBeDefined();
    expect(end?.at).toBeLessThanOrEqual(releaseEnteredAt as number);
    expect(w.find('b', 'primary')?.at).toBeGreaterThan(end?.at as number);
    await b.close();
  });

  it('a partitioned leader steps down maxDrift after its last refresh was sent; the standby takes over when the lease expires', async () => {
    const w = new World();
    const a = await w.node('a');
    const b = await w.node('b');
    await w.advance(1000); // a refreshes every 100 ms (random 0.5: no jitter)
    const lastRefreshSentAt = w.clock.now() - (w.clock.now() % 100);
    w.stores.get('a')!.partitioned = true;
    await w.advance(2000);
    const down = w.find('a', 'secondary');
    expect(down?.reason).toBe('drift');
    expect(down?.t).toBe(lastRefreshSentAt + BASE.maxDrift);
    const up = w.find('b', 'primary');
    expect(up?.reason).toBe('expired');
    // The lease expired at lastRefresh + leaseTTL; b's next tick took it.
    expect(up!.t).toBeGreaterThanOrEqual(lastRefreshSentAt + BASE.leaseTTL);
    expect(up!.t).toBeLessThanOrEqual(lastRefreshSentAt + BASE.leaseTTL + BASE.tickInterval * 1.2);
    // Never two leaders: a stepped down before b took over.
    expect(down!.t).toBeLessThan(up!.t);
    w.stores.get('a')!.partitioned = false;
    await w.advance(300);
    expect(a.status()).toMatchObject({ role: 'secondary', primary: { instanceId: 'b' }, redis: { connection: 'ok', leader: { nodeId: 'b' } } });
    await Promise.all([a.close(), b.close()]);
  });

  it('a paused server: the leader steps down at maxDrift while its refresh hangs; nobody leads; resumes after unpause', async () => {
    const w = new World();
    const a = await w.node('a');
    const b = await w.node('b');
    w.server.paused = true;
    await w.advance(3000);
    expect(w.find('a', 'secondary')?.reason).toBe('drift');
    expect(w.changes.filter((c) => c.to === 'primary' && c.from !== 'starting')).toEqual([]);
    w.server.paused = false;
    await flush();
    await w.advance(600);
    expect([a.role, b.role].filter((r) => r === 'primary')).toHaveLength(1);
    // Grants queued during the pause answer more than maxDrift after they were asked for: they
    // are given back rather than acted upon, so the revision may have moved by more than one.
    expect(Math.max(a.revision, b.revision)).toBeGreaterThanOrEqual(2);
    await Promise.all([a.close(), b.close()]);
  });

  it('a slow onStop is abandoned after exactly 1000 ms, then the lease is released and the standby leads', async () => {
    const w = new World();
    const a = await w.node('a', { onStop: () => new Promise(() => {}) });
    const b = await w.node('b');
    const closed = a.close();
    await w.advance(995);
    expect(b.role).toBe('secondary');
    expect(a.role).toBe('primary');
    await w.advance(10);
    expect(b.role).toBe('primary');
    expect(w.warnings.some((m) => m.includes('onStop did not finish within 1000 ms'))).toBe(true);
    await closed;
    await b.close();
  });

  it('stepDown(): the standby leads at once (pub/sub), the old leader holds off for leaseTTL, then can lead again', async () => {
    const w = new World();
    const calls: string[] = [];
    const a = await w.node('a', {
      onStart: ({ signal, revision }) =>
        new Promise<void>((resolve) => signal.addEventListener('abort', () => (calls.push(`abort ${revision} @${w.clock.now()}`), resolve()))),
      onStop: ({ revision }) => void calls.push(`stop ${revision} @${w.clock.now()}`),
    });
    const b = await w.node('b');
    await w.advance(200);
    const at = w.clock.now();
    a.stepDown();
    await flush();
    expect(w.clock.now()).toBe(at);
    expect(calls).toEqual([`abort 1 @${at}`, `stop 1 @${at}`]);
    expect(w.find('a', 'secondary')).toMatchObject({ reason: 'stepdown', epoch: 1, t: at });
    expect(w.find('b', 'primary')).toMatchObject({ reason: 'handover', epoch: 2, t: at });
    expect(a.status()).toMatchObject({ role: 'secondary', phase: 'follower', demotions: 1, redis: { stepDowns: 1 } });
    expect((await a.events(3)).map((e) => [e.nodeId, e.action, e.reason])).toEqual([
      ['b', 'elected', 'released'],
      ['a', 'released', 'stepdown'],
      ['a', 'elected', 'vacant'],
    ]);
    a.stepDown(); // not leader: nothing happens
    await w.advance(100);
    expect(a.role).toBe('secondary');

    // b leaves after the hold-off: a runs again and takes the lease at once.
    await w.advance(BASE.leaseTTL);
    expect((await a.liveNodes()).find((n) => n.instanceId === 'a')?.eligible).toBe(true);
    await b.close();
    await flush();
    expect(a.role).toBe('primary');
    expect(a.revision).toBe(3);
    await a.close();
  });

  it('stepDown() of the best priority node: the worse standby does not defer to it, and it takes the lease back after leaseTTL', async () => {
    const w = new World();
    const best = await w.node('best', { strategy: 'priority', nodePriority: 1 });
    const worse = await w.node('worse', { strategy: 'priority', nodePriority: 5 });
    await w.advance(200);
    expect([best.role, worse.role]).toEqual(['primary', 'secondary']);
    const at = w.clock.now();
    best.stepDown();
    await flush();
    // Not deferred to the stepping-down node: the release marked it ineligible.
    expect(w.find('worse', 'primary')).toMatchObject({ reason: 'handover', t: at });
    expect((await worse.liveNodes()).find((n) => n.instanceId === 'best')?.eligible).toBe(false);
    await w.advance(BASE.leaseTTL - 10);
    expect(worse.role).toBe('primary');
    await w.advance(BASE.leaseTTL / 2);
    // Eligible again: its acquire preempts the worse leader, which hands the lease back.
    expect(best.role).toBe('primary');
    expect(w.changes.find((c) => c.instanceId === 'worse' && c.from === 'primary')?.reason).toBe('preempted');
    await Promise.all([best.close(), worse.close()]);
  });

  it('priority: a better node joining preempts the leader, whose onStart signal aborts first', async () => {
    const w = new World();
    const aborted: number[] = [];
    const worse = await w.node('worse', {
      strategy: 'priority',
      nodePriority: 5,
      onStart: ({ signal }) => new Promise<void>((resolve) => signal.addEventListener('abort', () => (aborted.push(w.clock.now()), resolve()))),
    });
    expect(worse.role).toBe('primary');
    const better = await w.node('better', { strategy: 'priority', nodePriority: 1 });
    await flush();
    // The better node's acquire published `preempt`: no tick needed.
    expect(better.role).toBe('primary');
    expect(w.changes.find((c) => c.instanceId === 'worse' && c.from === 'primary')?.reason).toBe('preempted');
    expect(aborted).toEqual([0]);
    const live = await better.liveNodes();
    expect(live.map((n) => [n.instanceId, n.role === 'primary'])).toEqual([
      ['better', true],
      ['worse', false],
    ]);
    await Promise.all([worse.close(), better.close()]);
  });
});

describe('primaryChanged on a fake clock', () => {
  // Three nodes: c follows a, then b after a closes (a graceful handover through pub/sub); the
  // Watcher's followers get the same event name and fields when their primary changes.
  it('a standby reports each new leader once, with its revision', async () => {
    const w = new World();
    const a = await w.node('a');
    const b = await w.node('b');
    const c = await w.node('c');
    const seen: Array<{ instanceId: string; epoch: number; at: number }> = [];
    c.on('primaryChanged', (e) => void seen.push({ instanceId: e.instanceId, epoch: e.epoch, at: e.at }));
    await a.close();
    await flush();
    const leader = b.role === 'primary' ? 'b' : 'c';
    expect(leader).toBe('b');
    await w.advance(300);
    expect(seen).toEqual([{ instanceId: 'b', epoch: 2, at: expect.any(Number) as number }]);
    await b.close();
    await c.close();
  });
});
