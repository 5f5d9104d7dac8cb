/**
 * Knowing the cluster (liveNodes through presence on the endpoint), successor choice by priority,
 * and preemption: real processes, real sockets.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  freePort,
  tempWorkdir,
  uniqueIpc,
  waitFollows,
  waitPrimary,
  waitReady,
  type WatcherProcess,
} from '../../harness/cluster.js';
import type { NodeConfig } from '../../harness/watcher-node.js';

let cluster: Cluster;
let workdir: ReturnType<typeof tempWorkdir>;

afterEach(async () => {
  await cluster?.stopAll();
  workdir?.cleanup();
});

function config(endpoint: string, instanceId: string, extra: Partial<NodeConfig> = {}): NodeConfig {
  return { endpoint, instanceId, workdir: workdir.path, heartbeatInterval: 50, heartbeatTimeout: 10_000, ...extra };
}

interface Live {
  instanceId: string;
  role: string;
  priority: number;
  self: boolean;
}

/** Re-checks `cond` every 20 ms until it holds; fails after `timeout` ms. */
async function until(cond: () => Promise<boolean>, timeout: number, what: string): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function liveNodes(n: WatcherProcess): Promise<Live[]> {
  n.send({ cmd: 'liveNodes' });
  const reply = await n.next((e) => e.type === 'liveNodes', 5000, 'liveNodes');
  return (reply.nodes as Live[]).map(({ instanceId, role, priority, self }) => ({ instanceId, role, priority, self }));
}

/** A primary p0 and secondaries with the given priorities; resolves once every secondary is listed by the primary. */
async function start(endpoint: string, priorities: Record<string, number>, extra: Partial<NodeConfig> = {}) {
  cluster = new Cluster();
  const primary = cluster.spawn(config(endpoint, 'p0', { role: 'primary', priority: 50, ...extra }));
  await waitReady(primary);
  const secondaries = Object.entries(priorities).map(([id, priority]) =>
    cluster.spawn(config(endpoint, id, { role: 'secondary', priority, ...extra })),
  );
  await Promise.all(secondaries.map((n) => waitReady(n)));
  await Promise.all(secondaries.map((n) => waitFollows(n, 'p0')));
  // Every secondary is known once a heartbeat lists them all.
  const ids = Object.keys(priorities).sort();
  await until(async () => {
    const listed = (await liveNodes(secondaries[0] as WatcherProcess)).filter((n) => n.role === 'secondary');
    return JSON.stringify(listed.map((n) => n.instanceId).sort()) === JSON.stringify(ids);
  }, 5000, 'every secondary listed');
  return { primary, secondaries };
}

describe('liveNodes', () => {
  it('the primary lists its connected secondaries with their priorities, and secondaries learn them from heartbeats', async () => {
    workdir = tempWorkdir();
    const endpoint = uniqueIpc('fw-live');
    const { primary, secondaries } = await start(endpoint, { a: 3, b: 1, c: 2 });
    const fromPrimary = await liveNodes(primary);
    expect(fromPrimary.sort((x, y) => x.instanceId.localeCompare(y.instanceId))).toEqual([
      { instanceId: 'a', role: 'secondary', priority: 3, self: false },
      { instanceId: 'b', role: 'secondary', priority: 1, self: false },
      { instanceId: 'c', role: 'secondary', priority: 2, self: false },
      { instanceId: 'p0', role: 'primary', priority: 50, self: true },
    ]);
    const fromA = await liveNodes(secondaries[0] as WatcherProcess);
    expect(fromA.sort((x, y) => x.instanceId.localeCompare(y.instanceId))).toEqual([
      { instanceId: 'a', role: 'secondary', priority: 3, self: true },
      { instanceId: 'b', role: 'secondary', priority: 1, self: false },
      { instanceId: 'c', role: 'secondary', priority: 2, self: false },
      { instanceId: 'p0', role: 'primary', priority: 50, self: false },
    ]);
    // A secondary that goes disappears from the primary's list.
    const c = secondaries[2] as WatcherProcess;
    c.kill('SIGKILL');
    await c.exited;
    await until(async () => !(await liveNodes(primary)).some((n) => n.instanceId === 'c'), 5000, 'c to be gone');
    expect((await liveNodes(primary)).map((n) => n.instanceId).sort()).toEqual(['a', 'b', 'p0']);
  });
});

describe.each(['shutdown', 'crash'] as const)('successor choice on %s', (fault) => {
  it('the live secondary with the best priority takes over', async () => {
    workdir = tempWorkdir();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    // A generous stagger: the preferred node must win even on a loaded machine.
    const { primary, secondaries } = await start(endpoint, { a: 3, b: 1, c: 2 }, { priorityStagger: 150 });
    const [a, b, c] = secondaries as [WatcherProcess, WatcherProcess, WatcherProcess];
    if (fault === 'shutdown') primary.send({ cmd: 'shutdown' });
    else primary.kill('SIGKILL');
    const change = await waitPrimary(b);
    expect(change.reason).toBe(fault === 'shutdown' ? 'shutdown' : 'disconnect');
    await Promise.all([waitFollows(a, 'b'), waitFollows(c, 'b')]);
    expect(a.events.filter((e) => e.type === 'promote')).toEqual([]);
    expect(c.events.filter((e) => e.type === 'promote')).toEqual([]);
  });
});

describe('preemption', () => {
  it('a preempting primary hands over to a better-priority secondary after preemptDelay', async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = uniqueIpc('fw-preempt');
    const primary = cluster.spawn(config(endpoint, 'low', { role: 'primary', priority: 9, preempt: true, preemptDelay: 200 }));
    await waitReady(primary);
    const worse = cluster.spawn(config(endpoint, 'worse', { role: 'secondary', priority: 20, preempt: true }));
    await waitFollows(worse, 'low');
    const best = cluster.spawn(config(endpoint, 'best', { role: 'secondary', priority: 1, preempt: true }));
    await waitReady(best);
    const demote = await primary.waitFor((e) => e.type === 'demote', 10_000, 'demote');
    expect(demote.reason).toBe('stepdown');
    const change = await waitPrimary(best, 10_000);
    expect(change.reason).toBe('shutdown');
    await Promise.all([waitFollows(worse, 'best'), waitFollows(primary, 'best')]);
    expect(worse.events.filter((e) => e.type === 'promote')).toEqual([]);
  });

  it('without preempt, a better-priority secondary does not displace a working primary', async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = uniqueIpc('fw-nopreempt');
    const primary = cluster.spawn(config(endpoint, 'low', { role: 'primary', priority: 9 }));
    await waitReady(primary);
    const best = cluster.spawn(config(endpoint, 'best', { role: 'secondary', priority: 1 }));
    await waitFollows(best, 'low');
    // The primary lists it (so it could have preempted) and still keeps its role.
    await until(async () => (await liveNodes(primary)).some((n) => n.instanceId === 'best'), 5000, 'best listed');
    expect((await liveNodes(primary)).map((n) => n.instanceId).sort()).toEqual(['best', 'low']);
    primary.send({ cmd: 'status' });
    const st = await primary.next((e) => e.type === 'status', 5000);
    expect(st.status).toMatchObject({ role: 'primary', demotions: 0 });
  });
});
