/**
 * The welcome heartbeat (PROTOCOL.md section 5), with real processes and a long
 * heartbeatInterval (5 s, the default). A new primary announces itself right after its bind,
 * before the followers of the previous primary have reconnected, so that announcement reaches
 * nobody; what tells them is the heartbeat the new primary sends when each SUB subscribes as it
 * connects. Without it a follower learned the new primary a full heartbeatInterval late.
 *
 * The bounds (1 s) are far below the interval and generous for a loaded 2-core host; the lag
 * measured is in bench/README.md (`follower-welcome`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, freePort, tempWorkdir, uniqueIpc, type WatcherProcess } from '../../harness/cluster.js';
import type { NodeConfig } from '../../harness/watcher-node.js';

const READY = 20_000;
/** Far below heartbeatInterval: a follower that waited for a regular heartbeat misses it. */
const LAG_BOUND = 1000;
const INTERVAL = 5000;

let cluster: Cluster;
let workdir: ReturnType<typeof tempWorkdir>;

afterEach(async () => {
  await cluster?.stopAll();
  workdir?.cleanup();
});

function config(endpoint: string, instanceId: string, extra: Partial<NodeConfig> = {}): NodeConfig {
  return {
    endpoint,
    instanceId,
    workdir: workdir.path,
    heartbeatInterval: INTERVAL,
    heartbeatTimeout: 3 * INTERVAL,
    ...extra,
  };
}

const ready = (n: WatcherProcess) => n.waitFor((e) => e.type === 'ready', READY, 'ready');
const follows = (n: WatcherProcess, id: string, timeout: number) =>
  n.waitFor((e) => e.type === 'primaryChanged' && e.instanceId === id, timeout, `primaryChanged to ${id}`);

/** A primary and two secondaries (s1 ranks first as successor); each secondary must follow p0 soon after it is ready. */
async function startCluster(endpoint: string): Promise<{ primary: WatcherProcess; s1: WatcherProcess; s2: WatcherProcess }> {
  cluster = new Cluster();
  const primary = cluster.spawn(config(endpoint, 'p0', { role: 'primary' }));
  await ready(primary);
  const s1 = cluster.spawn(config(endpoint, 's1', { role: 'secondary', priority: 1 }));
  const s2 = cluster.spawn(config(endpoint, 's2', { role: 'secondary', priority: 2 }));
  for (const s of [s1, s2]) {
    const up = await ready(s);
    // A starting node is greeted too: it knows the primary long before the next heartbeat.
    const followed = await follows(s, 'p0', INTERVAL + 2000);
    expect(followed.at - up.at).toBeLessThan(LAG_BOUND);
  }
  return { primary, s1, s2 };
}

/**
 * The secondary that takes over (s1 as a rule; s2 when s1's first bind lost to the closing
 * socket), the other one, and ms from the winner's onPromote to the other's primaryChanged to it.
 */
async function takeover(s1: WatcherProcess, s2: WatcherProcess): Promise<{ winner: WatcherProcess; loser: WatcherProcess; lag: number }> {
  const winner = await Promise.any([s1, s2].map((s) => s.waitFor((e) => e.type === 'promote', 5000, 'onPromote').then(() => s)));
  const loser = winner === s1 ? s2 : s1;
  const promote = winner.events.find((e) => e.type === 'promote');
  const followed = await follows(loser, winner.id, INTERVAL + 2000);
  expect(loser.events.filter((e) => e.type === 'promote')).toHaveLength(0);
  return { winner, loser, lag: followed.at - (promote?.promoteAt as number) };
}

describe.each([
  ['tcp', async () => `tcp://127.0.0.1:${await freePort()}`],
  ['abstract ipc', async () => uniqueIpc('fw-welcome')],
])('over %s, heartbeatInterval 5 s', (_name, makeEndpoint) => {
  it('a follower learns the new primary at once after a crash', async () => {
    workdir = tempWorkdir();
    const { primary, s1, s2 } = await startCluster(await makeEndpoint());
    primary.kill('SIGKILL');
    const { winner, lag } = await takeover(s1, s2);
    expect(winner.events.find((e) => e.type === 'promote')?.reason).toBe('disconnect');
    expect(lag).toBeLessThan(LAG_BOUND);
  });

  it('a follower learns the new primary at once after a handover', async () => {
    workdir = tempWorkdir();
    const { primary, s1, s2 } = await startCluster(await makeEndpoint());
    primary.send({ cmd: 'shutdown' });
    const { winner, lag } = await takeover(s1, s2);
    expect(winner.events.find((e) => e.type === 'promote')?.reason).toBe('shutdown');
    expect(lag).toBeLessThan(LAG_BOUND);
  });
});
