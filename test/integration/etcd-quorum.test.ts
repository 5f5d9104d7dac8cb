/**
 * EtcdElection against a 3-member etcd cluster started by the test (one cluster for the file;
 * each test leaves all three members running): losing etcd's raft leader changes nothing; two
 * members lost, the leader steps down before its lease can expire and nobody leads; quorum back,
 * or the whole cluster restarted, the election resumes.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { EtcdElection } from '../../src/etcd.js';
import type { ElectionRoleChange } from '../../src/election/contract.js';
import { startEtcd, type EtcdCluster } from './etcd-kit.js';

let etcd: EtcdCluster;
let seq = 0;
beforeAll(async () => {
  etcd = await startEtcd(3);
});
afterAll(async () => {
  await etcd?.stop();
});

// The test cluster elects a raft leader within about 1.6 s of losing one (--election-timeout
// 500): maxDrift leaves it room after a keepalive interval.
const TIMING = { leaseTTL: 3000, keepAliveInterval: 250, maxDrift: 2500 } as const;

const waitFor = async (what: string, predicate: () => boolean | Promise<boolean>, timeout: number): Promise<void> => {
  const until = performance.now() + timeout;
  for (let i = 0; i < 10_000 && performance.now() < until; i++) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not ${what} within ${timeout} ms`);
};

interface Pair {
  readonly a: EtcdElection;
  readonly b: EtcdElection;
  readonly changes: ElectionRoleChange[];
}

async function pair(): Promise<Pair> {
  const project = `q${++seq}`;
  const changes: ElectionRoleChange[] = [];
  const a = new EtcdElection({ ...TIMING, project, hosts: etcd.hosts, instanceId: 'a' });
  const b = new EtcdElection({ ...TIMING, project, hosts: etcd.hosts, instanceId: 'b' });
  for (const e of [a, b]) e.on('roleChanged', (c) => changes.push(c));
  await a.start();
  await b.start();
  expect([a.role, b.role]).toEqual(['primary', 'secondary']);
  // roleChanged is delivered on the next macrotask: let the startup changes in, then forget them.
  await new Promise((r) => setImmediate(r));
  changes.length = 0;
  return { a, b, changes };
}

/** Each test leaves the cluster whole, even when it fails. */
afterEach(async () => {
  for (let i = 0; i < etcd.members.length; i++) if (etcd.members[i]!.proc === undefined) await etcd.restart(i);
});

const leaders = (p: Pair): EtcdElection[] => [p.a, p.b].filter((e) => e.role === 'primary');

it('a lost follower member fails no keepalive', async () => {
  const p = await pair();
  const leader = await etcd.raftLeader();
  expect(leader).toBeDefined();
  const victim = (leader! + 1) % etcd.members.length;
  const before = p.a.status().etcd.counters;
  await etcd.kill(victim);
  // Twelve keepalives later (etcd3 alone sends each to a random member: a third would fail).
  await waitFor('twelve keepalives', () => p.a.status().etcd.counters.operations >= before.operations + 12, 10_000);
  const after = p.a.status().etcd.counters;
  expect(after.operationFailures, p.a.status().etcd.lastError).toBe(before.operationFailures);
  expect(p.changes).toEqual([]);
  await Promise.all([p.a.shutdown(), p.b.shutdown()]);
});

it('losing the raft leader member changes nothing', async () => {
  const p = await pair();
  const epoch = p.a.epoch;
  const victim = await etcd.raftLeader();
  expect(victim).toBeDefined();
  const killedAt = performance.now();
  await etcd.kill(victim!);
  // Nothing may change while etcd elects a new raft leader and for a full maxDrift after: the
  // leader's keepalives go on through the other members.
  await waitFor('a new raft leader', async () => (await etcd.raftLeader()) !== undefined, 10_000);
  await waitFor(
    'kept alive past maxDrift',
    () => performance.now() - killedAt > TIMING.maxDrift + TIMING.keepAliveInterval && (p.a.status().etcd.lastKeepAliveAgeMs ?? Infinity) < 2 * TIMING.keepAliveInterval,
    10_000,
  );
  expect(p.changes.filter((c) => c.from === 'primary' || c.to === 'primary')).toEqual([]);
  expect([p.a.role, p.a.epoch, p.b.role]).toEqual(['primary', epoch, 'secondary']);
  expect(p.a.status().etcd.counters.driftStepDowns).toBe(0);
  await etcd.restart(victim!);
  await Promise.all([p.a.shutdown(), p.b.shutdown()]);
});

it('without quorum the leader steps down; quorum back resumes', async () => {
  const p = await pair();
  const epoch = p.a.epoch;
  // The send time of the leader's last confirmed keepalive, as its status shows it.
  let lastSentAt = 0;
  const track = (): boolean => {
    const age = p.a.status().etcd.lastKeepAliveAgeMs;
    if (age !== undefined && p.a.role === 'primary') lastSentAt = performance.now() - age;
    return p.a.role !== 'primary';
  };
  await Promise.all([etcd.kill(1), etcd.kill(2)]);
  await waitFor('stepped down', track, TIMING.leaseTTL + 2000);
  const steppedAt = performance.now();
  await new Promise((r) => setImmediate(r));
  expect(p.changes.find((c) => c.from === 'primary')?.reason).toBe('drift');
  // Before its lease could expire: a TTL after that keepalive at the earliest.
  expect(steppedAt - lastSentAt).toBeLessThan(TIMING.leaseTTL);
  expect(steppedAt - lastSentAt).toBeGreaterThanOrEqual(TIMING.maxDrift - 50);
  // Nobody leads without quorum, past the instant the old leader's lease could have expired.
  await waitFor('past the old lease', () => performance.now() - lastSentAt > TIMING.leaseTTL + TIMING.keepAliveInterval, 10_000);
  expect(leaders(p)).toEqual([]);
  expect(p.changes.filter((c) => c.to === 'primary')).toEqual([]);

  const backAt = performance.now();
  await etcd.restart(1);
  await waitFor('led again', () => leaders(p).length === 1, 15_000);
  const resumedMs = performance.now() - backAt;
  if (process.env.FW_PRINT === '1') process.stderr.write(`etcd quorum: stepped down ${Math.round(steppedAt - lastSentAt)} ms after its last keepalive, resumed ${Math.round(resumedMs)} ms after quorum\n`);
  expect(leaders(p)[0]!.epoch).toBeGreaterThan(epoch);
  await etcd.restart(2);
  await Promise.all([p.a.shutdown(), p.b.shutdown()]);
});

it('the whole etcd cluster restarted: the election resumes', async () => {
  const p = await pair();
  const epoch = p.a.epoch;
  await Promise.all([etcd.kill(0), etcd.kill(1), etcd.kill(2)]);
  await waitFor('stepped down', () => p.a.role === 'secondary', TIMING.leaseTTL + 2000);
  expect(leaders(p)).toEqual([]);
  const restartAt = performance.now();
  await Promise.all([etcd.restart(0), etcd.restart(1), etcd.restart(2)]);
  const servingAt = performance.now();
  await waitFor('led again', () => leaders(p).length === 1, 15_000);
  if (process.env.FW_PRINT === '1') {
    process.stderr.write(`etcd restart: members serving after ${Math.round(servingAt - restartAt)} ms, led again ${Math.round(performance.now() - servingAt)} ms later\n`);
  }
  expect(leaders(p)[0]!.epoch).toBeGreaterThan(epoch);
  expect(p.a.status().etcd.counters.driftStepDowns).toBe(1);
  await Promise.all([p.a.shutdown(), p.b.shutdown()]);
});
