/**
 * Revisions at the ceiling, on a FakeClock with the in-memory lease store (the scripts'
 * semantics): a revision counter set near or past 2^53 - 1 (by anyone with write access to the
 * project's keys) must never hand two terms the same revision, nor an unsafe one to onStart.
 * Before, the store took max(counter + 1, known + 1) whatever it was: past 2^53 that is a double
 * that no longer grows (2^53 + 1 === 2^53), and two leaders in a row got the same revision.
 */
import { describe, expect, it } from 'vitest';
import { leaseStep, initialLeaseState, type LeaseInput, type LeaseMachineState } from '../../../src/core/lease-machine.js';
import { FakeClock, run, type Cluster, type ClusterConfig } from '../../../src/redis.js';
import { MemoryLeaseServer, MemoryLeaseStore } from '../../../src/transport/redis/memory-lease-store.js';

const MAX = Number.MAX_SAFE_INTEGER;
const BASE = { leaseTTL: 1000, maxDrift: 500, tickInterval: 100 } as const;

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

class World {
  readonly clock = new FakeClock(0, 1_700_000_000_000);
  readonly server = new MemoryLeaseServer(() => this.clock.wallNow());
  readonly errors: string[] = [];
  /** Every revision handed to an onStart, in order. */
  readonly starts: Array<{ node: string; revision: number }> = [];

  async node(nodeId: string, extra: Partial<ClusterConfig> = {}): Promise<Cluster> {
    const store = new MemoryLeaseStore(this.server, { nodeId, session: `${nodeId}-s`, priority: 1, strategy: 'race', leaseTTL: BASE.leaseTTL, eventsLimit: 100 });
    const logger = { debug() {}, info() {}, warn() {}, error: (m: string) => void this.errors.push(m) };
    const onStart = ({ revision }: { revision: number }): void => void this.starts.push({ node: nodeId, revision });
    const cluster = await run({ project: 'unit', nodeId, clock: this.clock, logger, onStart, ...BASE, ...extra }, { store, random: () => 0.5 });
    await flush();
    return cluster;
  }

  async advance(ms: number): Promise<void> {
    for (let done = 0; done < ms; done += 5) {
      this.clock.advance(Math.min(5, ms - done));
      await flush();
    }
  }
}

describe('revisions at the ceiling (memory store)', () => {
  it('hands out 2^53 - 1 once, then nobody leads', async () => {
    const w = new World();
    w.server.revision = MAX - 1;
    const a = await w.node('a');
    const b = await w.node('b');
    expect(a.role).toBe('primary');
    await a.close();
    await flush();
    await w.advance(300);
    expect(w.starts).toEqual([{ node: 'a', revision: MAX }]);
    expect(b.role).toBe('secondary');
    expect(b.status()).toMatchObject({ primary: undefined, redis: { revisionExhausted: true, leader: undefined } });
    expect(b.status().redis.revisionRefusals).toBeGreaterThan(0);
    // Said once, with how to reset, however many ticks are refused.
    expect(w.errors.filter((m) => m.includes('no valid revision left'))).toHaveLength(1);
    expect(w.errors.join()).toMatch(/delete the project's revision key/);
    expect(w.server.revision).toBe(MAX);
    await b.close();
  });

  it('a counter set past 2^53 never gives two leaders one revision', async () => {
    const w = new World();
    w.server.revision = 2 ** 53;
    const a = await w.node('a');
    await w.advance(300);
    await a.close();
    const b = await w.node('b');
    await w.advance(300);
    expect(w.starts).toEqual([]);
    expect([a.role, b.role]).toEqual(['stopped', 'secondary']);
    expect(b.status().redis.revisionExhausted).toBe(true);
    expect(w.server.events.filter((e) => e.action === 'elected')).toEqual([]);
    await b.close();
  });

  it('a counter that is not an integer is refused, not rounded', async () => {
    const w = new World();
    w.server.revision = 2.5;
    const a = await w.node('a');
    expect(a.role).toBe('secondary');
    expect(w.starts).toEqual([]);
    expect(w.errors.join()).toContain('the revision counter holds "2.5"');
    await a.close();
  });

  it('leads again once the counter is reset, on restarted nodes', async () => {
    const w = new World();
    w.server.revision = MAX;
    const a = await w.node('a');
    expect(a.status().redis.revisionExhausted).toBe(true);
    await a.close();
    // The operator's reset: every node stopped, the revision key deleted, nodes started again.
    w.server.revision = 0;
    const again = await w.node('a2');
    expect(again.role).toBe('primary');
    expect(w.starts).toEqual([{ node: 'a2', revision: 1 }]);
    expect(again.status().redis.revisionExhausted).toBe(false);
    await again.close();
  });
});

describe('lease machine: revisions it cannot trust', () => {
  const config = { nodeId: 'a', priority: 1, strategy: 'race', tickInterval: 100, leaseTTL: 1000, maxDrift: 500, stopTimeout: 1000, handoverTimeout: 1000, failureHoldOff: 1000 } as const;
  function send(s: LeaseMachineState, input: LeaseInput) {
    return leaseStep(s, input, { now: 0, random: () => 0.5 });
  }
  function acquiring(): LeaseMachineState {
    let s = send(initialLeaseState(config), { type: 'start' }).state;
    s = send(s, { type: 'connected' }).state;
    expect(s.op?.kind).toBe('acquire');
    return s;
  }

  it('gives back a lease granted with an unsafe revision', () => {
    const s = acquiring();
    const r = send(s, { type: 'opResult', id: s.op!.id, reply: { kind: 'acquire', outcome: 'acquired', revision: 2 ** 53, from: 'vacant', duplicate: false } });
    expect(r.effects.filter((e) => e.type === 'callStart')).toEqual([]);
    expect(r.effects.filter((e) => e.type === 'release')).toEqual([{ type: 'release', reason: 'revision-exhausted', deregister: false, awaited: false }]);
    expect(r.state).toMatchObject({ phase: 'follower', role: 'secondary' });
  });

  it('shows the new leader\'s revision after losing the lease', () => {
    // status().epoch: "own term's while primary, otherwise the highest seen".
    let s = acquiring();
    s = send(s, { type: 'opResult', id: s.op!.id, reply: { kind: 'acquire', outcome: 'acquired', revision: 3, from: 'vacant', duplicate: false } }).state;
    s = send(s, { type: 'startSettled', term: 1, ok: true }).state;
    s = send(s, { type: 'tick' }).state;
    s = leaseStep(s, { type: 'tick' }, { now: 200, random: () => 0.5 }).state;
    expect(s.op?.kind).toBe('refresh');
    const r = leaseStep(s, { type: 'opResult', id: s.op!.id, reply: { kind: 'refresh', outcome: 'lost', leader: { nodeId: 'x', revision: 9, priority: 1 }, duplicate: false } }, { now: 200, random: () => 0.5 });
    expect(r.effects).toContainEqual({ type: 'notify', notification: { type: 'roleChanged', from: 'primary', to: 'secondary', epoch: 3, reason: 'lease-lost' } });
    expect(r.state).toMatchObject({ role: 'secondary', revision: 9, termRevision: 3 });
  });

  it('a revision seen past 2^53 - 1 counts as 2^53 - 1', () => {
    const s = acquiring();
    const r = send(s, { type: 'notice', notice: { type: 'elected', nodeId: 'x', revision: 2 ** 60, priority: 1 } });
    expect(r.state.knownRevision).toBe(MAX);
  });
});
