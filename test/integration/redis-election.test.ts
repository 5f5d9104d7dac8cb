/**
 * The Redis lease election across real OS processes and a real redis-server: no mocks, no
 * sleeps. Every wait is for an event, bounded by a timeout; every project is unique to its test.
 *
 * Without redis-server these tests are skipped with the reason printed; with CI set they fail.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { wallNow } from '../../harness/cluster.js';
import { RedisNodes, uniqueProject, type RedisNodeEvent, type RedisNodeProcess } from '../../harness/redis-cluster.js';
import type { RedisNodeConfig } from '../../harness/redis-node.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';

const skip = redisSkipReason();
const READY = 20_000; // process start under a loaded 2-core machine, tsx included
const LEASE_TTL = 1000;
const MAX_DRIFT = 500;
const TICK = 100;
/** Crash failover bound: leaseTTL, plus one tick (jittered), plus scheduling slack on a busy box. */
const CRASH_BOUND = LEASE_TTL + TICK * 1.2 + 400;
/**
 * Where a test must tell a pub/sub reaction from a tick, ticks are slow (400 ms, never below
 * 320 ms with jitter) so that a generous bound on a loaded machine still proves "not a tick".
 */
const SLOW_TICKS = { tickInterval: 400, leaseTTL: 3000, maxDrift: 1500 } as const;
const NOT_A_TICK = 250;

let server: RedisServer;
let nodes: RedisNodes;

beforeAll(async () => {
  if (skip === undefined) server = await RedisServer.start();
});
afterAll(async () => {
  await server?.kill();
});
afterEach(async () => {
  await nodes?.stopAll();
});

function config(project: string, nodeId: string, extra: Partial<RedisNodeConfig> = {}): RedisNodeConfig {
  return { project, nodeId, redisUrl: server.url, leaseTTL: LEASE_TTL, maxDrift: MAX_DRIFT, tickInterval: TICK, ...extra };
}

const ready = (n: RedisNodeProcess) => n.waitFor((e) => e.type === 'ready', READY, 'ready');
const isPrimary = (e: RedisNodeEvent) => e.type === 'roleChanged' && e.to === 'primary';
const becamePrimary = (n: RedisNodeProcess, timeout: number) => n.next(isPrimary, timeout, 'roleChanged to primary');
const primaryEvents = (n: RedisNodeProcess) => n.events.filter(isPrimary);

/** Starts the nodes one after another and waits until exactly one leads. */
async function startAll(configs: RedisNodeConfig[]): Promise<{ all: RedisNodeProcess[]; leader: RedisNodeProcess }> {
  nodes = new RedisNodes();
  const all = configs.map((c) => nodes.spawn(c));
  await Promise.all(all.map(ready));
  const leader = await Promise.any(all.map((n) => n.waitFor(isPrimary, 5000, 'a leader').then(() => n)));
  return { all, leader };
}

describe.skipIf(skip !== undefined)('Redis election across processes', () => {
  it('race: exactly one of 3 nodes leads; a SIGKILLed leader is replaced within leaseTTL plus a tick, with the next revision', async () => {
    const project = uniqueProject('race');
    const { all, leader } = await startAll(['a', 'b', 'c'].map((id) => config(project, id)));
    expect(nodes.primaries()).toEqual([leader]);
    const first = primaryEvents(leader)[0];
    const others = all.filter((n) => n !== leader);

    const killedAt = wallNow();
    leader.kill('SIGKILL');
    const winner = await Promise.any(others.map((n) => becamePrimary(n, CRASH_BOUND + 2000).then((e) => ({ n, e }))));
    const takeover = winner.e.at - killedAt;
    expect(takeover).toBeLessThan(CRASH_BOUND);
    expect(winner.e.reason).toBe('expired');
    expect(winner.e.epoch).toBe(Number(first?.epoch) + 1);
    const loser = others.find((n) => n !== winner.n);
    expect(loser && primaryEvents(loser)).toHaveLength(0);
    expect(nodes.primaries()).toEqual([winner.n]);

    // The history records the expiry of the dead leader's lease and the new election.
    const events = (await winner.n.ask('events')).events as Array<{ nodeId: string; action: string; revision: number }>;
    expect(events.slice(0, 3).map((e) => [e.nodeId, e.action])).toEqual([
      [winner.n.id, 'elected'],
      [leader.id, 'expired'],
      [leader.id, 'elected'],
    ]);
  });

  it('graceful close: onStop runs, then the lease is released and a standby takes over within milliseconds', async () => {
    const project = uniqueProject('close');
    const { all, leader } = await startAll(['a', 'b', 'c'].map((id) => config(project, id, { stopDelay: 50, ...SLOW_TICKS })));
    const others = all.filter((n) => n !== leader);
    const revision = Number(primaryEvents(leader)[0]?.epoch);

    const next = Promise.any(others.map((n) => becamePrimary(n, 5000).then((e) => ({ n, e }))));
    leader.send({ cmd: 'close' });
    const closeCalled = await leader.waitFor((e) => e.type === 'closeCalled', 5000);
    const stopDone = await leader.waitFor((e) => e.type === 'stopDone', 5000);
    const winner = await next;
    const closed = await leader.waitFor((e) => e.type === 'closed', 5000);
    expect(closed.error).toBeUndefined();
    expect((await leader.exited).code).toBe(0);

    expect(winner.e.reason).toBe('handover');
    expect(winner.e.epoch).toBe(revision + 1);
    // The successor started only after the old leader's onStop finished...
    const started = await winner.n.waitFor((e) => e.type === 'start', 1000);
    expect(started.at).toBeGreaterThanOrEqual(stopDone.at);
    // ...and far sooner than a tick after it: pub/sub, not polling (50 ms of onStop included).
    expect(winner.e.at - stopDone.at).toBeLessThan(NOT_A_TICK);
    expect(winner.e.at - closeCalled.at).toBeLessThan(50 + NOT_A_TICK);
    expect(nodes.primaries()).toEqual([winner.n]);
  });

  it('stepDown(): onStop, release, another node leads within milliseconds; the old leader stays a standby, holds off for leaseTTL, and can lead again', async () => {
    const project = uniqueProject('stepdown');
    const { all, leader } = await startAll(['a', 'b', 'c'].map((id) => config(project, id, { stopDelay: 20, ...SLOW_TICKS })));
    const others = all.filter((n) => n !== leader);
    const revision = Number(primaryEvents(leader)[0]?.epoch);

    const next = Promise.any(others.map((n) => becamePrimary(n, 5000).then((e) => ({ n, e }))));
    leader.send({ cmd: 'stepDown' });
    const called = await leader.waitFor((e) => e.type === 'stepDownCalled', 5000);
    const aborted = await leader.waitFor((e) => e.type === 'abort', 5000, 'onStart signal aborted');
    const stopDone = await leader.waitFor((e) => e.type === 'stopDone', 5000);
    const down = await leader.waitFor((e) => e.type === 'roleChanged' && e.from === 'primary', 5000, 'step-down');
    const winner = await next;
    expect(aborted.revision).toBe(revision);
    expect(down).toMatchObject({ to: 'secondary', reason: 'stepdown', epoch: revision });
    expect(down.at).toBeGreaterThanOrEqual(stopDone.at);
    expect(winner.e).toMatchObject({ reason: 'handover', epoch: revision + 1 });
    const started = await winner.n.waitFor((e) => e.type === 'start', 1000);
    expect(started.at).toBeGreaterThanOrEqual(stopDone.at);
    // Pub/sub, not a tick: milliseconds after onStop (20 ms of it included).
    expect(winner.e.at - stopDone.at).toBeLessThan(NOT_A_TICK);
    expect(winner.e.at - called.at).toBeLessThan(20 + NOT_A_TICK);
    expect(nodes.primaries()).toEqual([winner.n]);

    // Still in the election: a live standby, not eligible while it holds off.
    expect(leader.alive).toBe(true);
    const st = (await leader.ask('status')).status as { role: string; redis: { stepDowns: number; leader?: { nodeId: string } } };
    expect(st).toMatchObject({ role: 'secondary', redis: { stepDowns: 1 } });
    const live = (await winner.n.ask('liveNodes')).nodes as Array<{ instanceId: string; eligible: boolean }>;
    expect(live.map((n) => n.instanceId).sort()).toEqual(['a', 'b', 'c']);
    expect(live.find((n) => n.instanceId === leader.id)?.eligible).toBe(false);
    const events = (await winner.n.ask('events')).events as Array<{ nodeId: string; action: string; reason: string }>;
    expect(events.slice(0, 2).map((e) => [e.nodeId, e.action, e.reason])).toEqual([
      [winner.n.id, 'elected', 'released'],
      [leader.id, 'released', 'stepdown'],
    ]);

    // The two others leave at once; it ignores the release while it holds off, and takes the
    // lease at its first tick after leaseTTL.
    const back = becamePrimary(leader, SLOW_TICKS.leaseTTL + 5000);
    await Promise.all(others.map((n) => n.close()));
    const again = await back;
    expect(again).toMatchObject({ reason: 'handover', epoch: revision + 2 });
    expect(again.at - down.at).toBeGreaterThanOrEqual(SLOW_TICKS.leaseTTL - 50);
    expect(again.at - down.at).toBeLessThan(SLOW_TICKS.leaseTTL + SLOW_TICKS.tickInterval * 1.2 + 500);
    expect(leader.events.filter((e) => e.type === 'start')).toHaveLength(2);
    expect(nodes.primaries()).toEqual([leader]);
  });

  it('priority: the best live node leads; a worse leader hands over to a better node that joins, the middle one never leads', async () => {
    const project = uniqueProject('prio');
    nodes = new RedisNodes();
    const worst = nodes.spawn(config(project, 'p3', { strategy: 'priority', nodePriority: 3 }));
    await ready(worst);
    await worst.waitFor(isPrimary, 5000, 'p3 leads alone');
    const middle = nodes.spawn(config(project, 'p2', { strategy: 'priority', nodePriority: 2 }));
    // p2 joins: p3 hands over to it.
    const p2leads = await middle.waitFor(isPrimary, READY, 'p2 takes over from p3');
    expect(p2leads.reason).toBe('handover');
    const p3down = await worst.waitFor((e) => e.type === 'roleChanged' && e.from === 'primary', 1000);
    expect(p3down.reason).toBe('preempted');

    const best = nodes.spawn(config(project, 'p1', { strategy: 'priority', nodePriority: 1 }));
    const p1leads = await best.waitFor(isPrimary, READY, 'p1 takes over from p2');
    expect(p1leads.reason).toBe('handover');
    expect(p1leads.epoch).toBe(Number(p2leads.epoch) + 1);
    const p2down = await middle.waitFor((e) => e.type === 'roleChanged' && e.from === 'primary', 1000);
    expect(p2down.reason).toBe('preempted');
    // p3 never took the lease back on the way.
    expect(primaryEvents(worst)).toHaveLength(1);
    expect(nodes.primaries()).toEqual([best]);

    const live = (await best.ask('liveNodes')).nodes as Array<{ instanceId: string; priority: number; role: string; lastSeenAt: number }>;
    expect(live.map((n) => [n.instanceId, n.priority, n.role])).toEqual([
      ['p1', 1, 'primary'],
      ['p2', 2, 'secondary'],
      ['p3', 3, 'secondary'],
    ]);
    for (const n of live) expect(Math.abs(Date.now() - n.lastSeenAt)).toBeLessThan(LEASE_TTL);

    // The best node crashes: the second best (not the worst) takes over when its lease expires.
    best.kill('SIGKILL');
    const again = await middle.next(isPrimary, CRASH_BOUND + 2000, 'p2 after p1 crashed');
    expect(again.reason).toBe('expired');
    expect(primaryEvents(worst)).toHaveLength(1);

    const stats = (await middle.ask('stats')).html as string;
    expect(stats).toContain('<code>p2</code>');
    expect(stats).toMatch(/Live nodes \(2\)/);
  });

  it('a rejected onStart makes the node step down at once; another node takes over and the failed one holds off', async () => {
    const project = uniqueProject('fail');
    nodes = new RedisNodes();
    const failing = nodes.spawn(config(project, 'f', { failStarts: 1, startRejectDelay: 100, ...SLOW_TICKS }));
    await ready(failing);
    await failing.waitFor(isPrimary, 5000);
    const standby = nodes.spawn(config(project, 's', SLOW_TICKS));
    await ready(standby);
    const down = await failing.waitFor((e) => e.type === 'roleChanged' && e.from === 'primary', 5000);
    expect(down.reason).toBe('start-failed');
    const failedStart = failing.events.find((e) => e.type === 'start');
    // It stepped down right after the rejection, not at a tick or at the lease's expiry.
    expect(down.at - Number(failedStart?.at)).toBeLessThan(100 + NOT_A_TICK);
    const taken = await standby.waitFor(isPrimary, 5000, 'standby takes over');
    expect(['handover', 'vacant']).toContain(taken.reason);
    expect(nodes.primaries()).toEqual([standby]);
    // The node never took the role: no onStop (onDemote) for a failed onStart (the contract's rule).
    expect(failing.events.filter((e) => e.type === 'stop')).toHaveLength(0);
  });

  it('a slow onStop is abandoned after 1 s with a warning; the lease is handed over then', async () => {
    const project = uniqueProject('slow');
    const { all, leader } = await startAll(['a', 'b'].map((id) => config(project, id, { stopDelay: 4000 })));
    const other = all.find((n) => n !== leader) as RedisNodeProcess;
    leader.send({ cmd: 'close' });
    const closeCalled = await leader.waitFor((e) => e.type === 'closeCalled', 5000);
    const taken = await becamePrimary(other, 5000);
    const waited = taken.at - closeCalled.at;
    expect(waited).toBeGreaterThanOrEqual(990);
    expect(waited).toBeLessThan(1000 + 300);
    const warning = leader.events.find((e) => e.type === 'warning' && String(e.message).includes('onStop'));
    expect(warning?.message).toMatch(/1000 ms/);
    expect(leader.events.some((e) => e.type === 'stopDone')).toBe(false);
  });

  it('a hung leader (blocked event loop) is replaced when its lease expires and steps down for drift as soon as it wakes', async () => {
    const project = uniqueProject('hang');
    const { all, leader } = await startAll(['a', 'b'].map((id) => config(project, id)));
    const other = all.find((n) => n !== leader) as RedisNodeProcess;
    const revision = Number(primaryEvents(leader)[0]?.epoch);
    const taken = becamePrimary(other, CRASH_BOUND + 3000);
    leader.send({ cmd: 'block', ms: 2500 });
    const blocking = await leader.waitFor((e) => e.type === 'blocking', 5000);
    const t = await taken;
    expect(t.reason).toBe('expired');
    expect(t.epoch).toBe(revision + 1);
    expect(t.at - blocking.at).toBeLessThan(CRASH_BOUND);
    const unblocked = await leader.waitFor((e) => e.type === 'unblocked', 5000);
    const down = await leader.waitFor((e) => e.type === 'roleChanged' && e.from === 'primary', 2000, 'step-down after waking');
    expect(down.reason).toBe('drift');
    expect(down.at - unblocked.at).toBeLessThan(200);
    expect(nodes.primaries()).toEqual([other]);
    // It rejoins as a standby and sees the new leader's revision.
    const status = await leader.ask('status');
    expect(status.info).toMatchObject({ isLeader: false, revision: revision + 1 });
  });

  it('the revision grows by one at every change of leader', async () => {
    const project = uniqueProject('rev');
    const { all, leader } = await startAll(['a', 'b', 'c'].map((id) => config(project, id)));
    const seen = [Number(primaryEvents(leader)[0]?.epoch)];
    let current = leader;
    for (let i = 0; i < 2; i++) {
      const rest = all.filter((n) => n.alive && n !== current);
      const next = Promise.any(rest.map((n) => becamePrimary(n, 5000).then((e) => ({ n, e }))));
      await current.close();
      const w = await next;
      seen.push(Number(w.e.epoch));
      current = w.n;
    }
    expect(seen).toEqual([seen[0], (seen[0] ?? 0) + 1, (seen[0] ?? 0) + 2]);
    const status = (await current.ask('status')).info as { revision: number; isLeader: boolean };
    expect(status).toMatchObject({ revision: seen[2], isLeader: true });
  });
});
