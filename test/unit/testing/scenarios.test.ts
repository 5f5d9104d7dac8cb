/**
 * The test kit's scenarios, each run twice on fresh clusters: the same transcript both times
 * (every role change, event and callback, with test times), and what the real watcher decides
 * in each (who takes over, with which reason and epoch, or that nobody does). Every scenario
 * covers seconds of test time in well under a second.
 */
import { describe, expect, it } from 'vitest';
import { createTestCluster, type TestCluster, type TestClusterOptions } from '../../../src/testing/index.js';

/** What the application saw: every callback, with its node and test time. */
type Call = { at: number; node: string; call: 'promote' | 'demote'; epoch: number; reason: string };

interface Run {
  readonly transcript: string;
  readonly calls: Call[];
  readonly cluster: TestCluster;
  readonly realMs: number;
}

const TIMING = { heartbeatInterval: 100, heartbeatTimeout: 300 };

/** Builds a cluster whose callbacks record themselves, runs `body` on it, shuts it down. */
type Extra = (cluster: () => TestCluster) => Partial<TestClusterOptions>;

async function run(body: (cluster: TestCluster) => Promise<void>, extra: Extra = () => ({})): Promise<Run> {
  const began = performance.now();
  const calls: Call[] = [];
  const cluster: TestCluster = createTestCluster({
    nodes: ['a', 'b', 'c'],
    options: TIMING,
    onPromote: ({ instanceId, epoch, reason }) => {
      calls.push({ at: cluster.now, node: instanceId, call: 'promote', epoch, reason });
    },
    onDemote: ({ instanceId, epoch, reason }) => {
      calls.push({ at: cluster.now, node: instanceId, call: 'demote', epoch, reason });
    },
    ...extra(() => cluster),
  });
  await cluster.start();
  await cluster.advance(1000);
  await body(cluster);
  await cluster.shutdown();
  const transcript = JSON.stringify({ timeline: cluster.timeline(), events: cluster.events, calls, violations: cluster.violations });
  return { transcript, calls, cluster, realMs: performance.now() - began };
}

/** Runs the scenario twice; checks both runs tell the same story, fast; returns the first. */
async function twice(body: (cluster: TestCluster) => Promise<void>, extra?: Extra): Promise<Run> {
  const first = await run(body, extra);
  const second = await run(body, extra);
  expect(second.transcript).toBe(first.transcript);
  expect(first.cluster.violations).toEqual([]);
  // Seconds of test time each (docs/TESTING.md has the figures); the bound only catches a kit
  // that waits in real time.
  expect(first.realMs + second.realMs).toBeLessThan(10_000);
  return first;
}

describe('the test kit', () => {
  it('a crashed primary is replaced by disconnect', async () => {
    const r = await twice(async (cluster) => {
      cluster.crash('a');
      await cluster.until(() => cluster.primary() === 'b', { within: 100 });
      await cluster.advance(1000);
    });
    // b ranks first (priority, then id) and takes over at the instant a dies; c follows it.
    const took = r.cluster.history.find((c) => c.to === 'primary' && c.node === 'b');
    expect(took).toMatchObject({ at: 1000, from: 'secondary', reason: 'disconnect', epoch: 2 });
    // A crash runs no onDemote.
    expect(r.calls.filter((c) => c.node === 'a')).toEqual([{ at: 0, node: 'a', call: 'promote', epoch: 1, reason: 'startup' }]);
    expect(r.cluster.events.some((e) => e.node === 'c' && e.type === 'primaryChanged' && e.event.instanceId === 'b')).toBe(true);
  });

  it('a graceful stop hands over by farewell', async () => {
    const r = await twice(async (cluster) => {
      await cluster.stop('a');
      await cluster.advance(1000);
    });
    // a's onDemote, then b's onPromote, at the same test time: the successor starts after a let go.
    expect(r.calls.slice(1)).toEqual([
      { at: 1000, node: 'a', call: 'demote', epoch: 1, reason: 'shutdown' },
      { at: 1000, node: 'b', call: 'promote', epoch: 2, reason: 'shutdown' },
      { at: 2000, node: 'b', call: 'demote', epoch: 2, reason: 'shutdown' },
    ]);
  });

  it('a silent primary is suspected, never replaced', async () => {
    const r = await twice(async (cluster) => {
      cluster.silence('a', 2000);
      await cluster.advance(1000);
      // a still holds the endpoint: b and c suspect it, their binds fail, nobody else leads.
      expect(cluster.assertOnePrimary()).toBe('a');
      await cluster.advance(2000);
      expect(cluster.node('b').status().primary?.instanceId).toBe('a');
    });
    const lost = r.cluster.events.filter((e) => e.type === 'primaryLost');
    expect(lost.map((e) => [e.node, e.at, e.type === 'primaryLost' && e.event.reason])).toEqual([
      ['b', 1300, 'suspected'],
      ['c', 1300, 'suspected'],
    ]);
    expect(r.calls.filter((c) => c.call === 'promote').map((c) => c.node)).toEqual(['a']);
  });

  it('a stalled primary keeps its role and checks its epoch', async () => {
    const r = await twice(async (cluster) => {
      cluster.stall('a', 1000);
      await cluster.advance(1000);
      expect(cluster.node('a').status().stalls).toBe(1);
      await cluster.advance(1000);
      expect(cluster.assertOnePrimary()).toBe('a');
      expect(cluster.node('c').status().primary?.instanceId).toBe('a');
    });
    expect(r.cluster.history.filter((c) => c.from === 'primary' && c.to !== 'stopped')).toEqual([]);
    expect(r.cluster.events.some((e) => e.type === 'primaryLost' && e.node === 'b')).toBe(true);
  });

  it('a partition cannot make a second primary', async () => {
    const r = await twice(async (cluster) => {
      cluster.partition(['a'], ['b', 'c']);
      await cluster.advance(2000);
      expect(cluster.assertOnePrimary()).toBe('a');
      expect(cluster.node('b').status().primarySuspected).toBe(true);
      cluster.heal();
      await cluster.advance(1000);
      expect(cluster.node('b').status().primary?.instanceId).toBe('a');
    });
    expect(r.calls.filter((c) => c.call === 'promote').map((c) => c.node)).toEqual(['a']);
  });

  it('a higher epoch demotes; the next term is above it', async () => {
    const r = await twice(async (cluster) => {
      const foreign = cluster.injectPrimary({ epoch: 100 });
      await cluster.until(() => cluster.node('a').role === 'secondary', { within: 100 });
      await cluster.advance(500);
      expect(cluster.primary()).toBeUndefined();
      expect(cluster.node('c').status().primary).toMatchObject({ instanceId: 'foreign', epoch: 100 });
      foreign.leave();
      await cluster.until(() => cluster.primary() !== undefined, { within: 100 });
      await cluster.advance(500);
    });
    // a hears the foreign primary once its subscriber has reconnected to it (reconnectDelay).
    expect(r.calls).toContainEqual({ at: 1010, node: 'a', call: 'demote', epoch: 1, reason: 'higher-epoch' });
    // The foreign primary's farewell: a (best ranked) takes over above the epoch it saw.
    expect(r.calls).toContainEqual({ at: 1510, node: 'a', call: 'promote', epoch: 101, reason: 'shutdown' });
  });

  it('a stalled primary finds a higher epoch on waking', async () => {
    // While a is frozen, a foreign process takes the endpoint (it ignored the lock) and leaves;
    // b takes over and records epoch 11. a wakes still believing it is primary: before it
    // heartbeats again it reads the state file, finds 11 and steps down. The one fault that
    // breaks the exclusive bind, so the cluster's check records the overlap.
    const body = async (cluster: TestCluster): Promise<void> => {
      cluster.stall('a', 2000);
      const foreign = cluster.injectPrimary({ epoch: 10 });
      await cluster.advance(500);
      foreign.leave();
      await cluster.until(() => cluster.node('b').role === 'primary', { within: 100 });
      await cluster.until(() => cluster.node('a').role === 'secondary', { within: 2000 });
      expect(cluster.now).toBe(3000);
    };
    const warnings: string[] = [];
    const logger = { debug: () => undefined, info: () => undefined, warn: (m: string) => void warnings.push(m), error: () => undefined };
    const extra: Extra = () => ({ nodes: ['a', 'b', 'c'].map((id) => ({ id, options: id === 'a' ? { ...TIMING, logger } : TIMING })) });
    const r = await run(body, extra);
    expect((await run(body, extra)).transcript).toBe(r.transcript);
    // The state file, not the wire, told it (its timers run before what arrived while frozen).
    expect(warnings.some((w) => w.includes('state file holds epoch 11 > own 1'))).toBe(true);
    expect(r.calls).toContainEqual({ at: 3000, node: 'a', call: 'demote', epoch: 1, reason: 'higher-epoch' });
    expect(r.calls).toContainEqual({ at: 1500, node: 'b', call: 'promote', epoch: 11, reason: 'shutdown' });
    expect(r.cluster.violations.length).toBeGreaterThan(0);
    expect(r.cluster.violations[0]).toEqual({ at: 1500, primaries: ['a', 'b'] });
  });

  it('a restarted node follows and keeps the epoch growing', async () => {
    const r = await twice(async (cluster) => {
      cluster.crash('a');
      await cluster.advance(500);
      await cluster.restart('a');
      await cluster.advance(500);
      expect(cluster.node('a').role).toBe('secondary');
      expect(cluster.node('a').status().primary?.instanceId).toBe('b');
      await cluster.stop('b');
      await cluster.until(() => cluster.primary() === 'a', { within: 1000 });
    });
    // a ranks before c (same priority, lower id): it takes over from b, above b's epoch.
    expect(r.calls.filter((c) => c.call === 'promote').map((c) => `${c.node}@${c.epoch}`)).toEqual(['a@1', 'b@2', 'a@3']);
    expect(r.cluster.storedEpoch).toBe(3);
  });

  it('a failed onPromote is retried with seeded jitter', async () => {
    let failures = 0;
    const r = await twice(
      async (cluster) => {
        failures = 0;
        cluster.crash('a');
        await cluster.until(() => cluster.primary() !== undefined, { within: 5000 });
      },
      () => ({
        nodes: ['a', 'b'],
        options: { ...TIMING, retryInterval: 200 },
        onPromote: ({ instanceId }) => {
          if (instanceId === 'b' && failures++ < 2) throw new Error('database not reachable');
        },
      }),
    );
    const failed = r.cluster.events.filter((e) => e.type === 'promotionFailed');
    expect(failed).toHaveLength(2);
    expect(r.cluster.history.filter((c) => c.node === 'b' && c.to === 'primary')).toHaveLength(1);
  });

  it('an onPromote that takes test time delays the role', async () => {
    const r = await twice(
      async (cluster) => {
        cluster.crash('a');
        await cluster.until(() => cluster.primary() === 'b', { within: 1000 });
      },
      (cluster) => ({
        onPromote: async ({ reason }) => {
          if (reason !== 'startup') await cluster().sleep(250);
        },
      }),
    );
    const took = r.cluster.history.find((c) => c.node === 'b' && c.to === 'primary');
    expect(took?.at).toBe(1250);
  });
});
