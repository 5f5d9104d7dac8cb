/**
 * The Watcher across real OS processes and real ZeroMQ sockets: no mocks, no sleeps. Every wait
 * is for an event, bounded by a timeout; every endpoint and workdir is unique to its test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, freePort, tempWorkdir, uniqueIpc, type WatcherProcess } from '../../harness/cluster.js';
import type { NodeConfig } from '../../harness/watcher-node.js';

const READY = 20_000; // process start under a loaded 2-core machine, tsx included
const FAST = 5_000;

let cluster: Cluster;
let workdir: ReturnType<typeof tempWorkdir>;

afterEach(async () => {
  await cluster?.stopAll();
  workdir?.cleanup();
});

function setup(): void {
  cluster = new Cluster();
  workdir = tempWorkdir();
}

function config(endpoint: string, instanceId: string, extra: Partial<NodeConfig> = {}): NodeConfig {
  return {
    endpoint,
    instanceId,
    workdir: workdir.path,
    heartbeatInterval: 50,
    heartbeatTimeout: 10_000, // long: anything faster than this was not a silence failover
    ...extra,
  };
}

const ready = (n: WatcherProcess) => n.waitFor((e) => e.type === 'ready', READY, 'ready');
const becamePrimary = (n: WatcherProcess, timeout = FAST) =>
  n.waitFor((e) => e.type === 'roleChanged' && e.to === 'primary', timeout, 'roleChanged to primary');
const follows = (n: WatcherProcess, id: string, timeout = FAST) =>
  n.waitFor((e) => e.type === 'primaryChanged' && e.instanceId === id, timeout, `primaryChanged to ${id}`);

/** Starts a primary and `count` secondaries that follow it. */
async function startCluster(endpoint: string, count: number, extra: Partial<NodeConfig> = {}) {
  const primary = cluster.spawn(config(endpoint, 'p0', { role: 'primary', ...extra }));
  await ready(primary);
  const secondaries = Array.from({ length: count }, (_, i) =>
    cluster.spawn(config(endpoint, `s${i + 1}`, { role: 'secondary', ...extra })),
  );
  await Promise.all(secondaries.map(ready));
  await Promise.all(secondaries.map((s) => follows(s, 'p0')));
  return { primary, secondaries };
}

describe.each([
  ['tcp', async () => `tcp://127.0.0.1:${await freePort()}`],
  ['abstract ipc', async () => uniqueIpc('fw-it')],
  ['filesystem ipc', async () => `ipc://${workdir.path}/cluster.sock`],
])('over %s', (_name, makeEndpoint) => {
  it('hands over at once on graceful shutdown; exactly one secondary wins and the others follow it', async () => {
    setup();
    const endpoint = await makeEndpoint();
    const { primary, secondaries } = await startCluster(endpoint, 3);

    primary.send({ cmd: 'shutdown' });
    // The old primary's process exits by itself: shutdown left no socket or timer behind.
    const exit = await primary.exited;
    expect(exit.code).toBe(0);

    const winner = await Promise.any(secondaries.map((s) => becamePrimary(s).then(() => s)));
    const change = winner.events.find((e) => e.type === 'roleChanged' && e.to === 'primary');
    expect(change?.reason).toBe('shutdown');
    expect(change?.epoch).toBe(2);
    const losers = secondaries.filter((s) => s !== winner);
    await Promise.all(losers.map((s) => follows(s, winner.id)));
    // The exclusive bind decided: nobody else ever called onPromote.
    for (const s of losers) expect(s.events.filter((e) => e.type === 'promote')).toHaveLength(0);
    expect(cluster.primaries()).toEqual([winner]);
  });
});

describe('Watcher processes', () => {
  it('promotes long before heartbeatTimeout when the primary is SIGKILLed (disconnect, confirmed by the bind)', async () => {
    setup();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const { primary, secondaries } = await startCluster(endpoint, 3);
    primary.kill('SIGKILL');
    const winner = await Promise.any(secondaries.map((s) => becamePrimary(s, FAST).then(() => s)));
    const change = winner.events.find((e) => e.type === 'roleChanged' && e.to === 'primary');
    // heartbeatTimeout is 10 s and the wait is 5 s: only the disconnect can explain this.
    expect(change?.reason).toBe('disconnect');
    const losers = secondaries.filter((s) => s !== winner);
    await Promise.all(losers.map((s) => follows(s, winner.id)));
    expect(cluster.primaries()).toEqual([winner]);
  });

  it('a hung (SIGSTOPped) primary keeps its role: secondaries suspect it after heartbeatTimeout, never promote, and follow it again after SIGCONT', async () => {
    setup();
    const endpoint = uniqueIpc('fw-hang');
    const { primary, secondaries } = await startCluster(endpoint, 2, { heartbeatTimeout: 300 });
    primary.kill('SIGSTOP');
    const [s1, s2] = secondaries as [WatcherProcess, WatcherProcess];
    const losses = await Promise.all(
      [s1, s2].map((s) => s.waitFor((e) => e.type === 'primaryLost', FAST, 'primaryLost')),
    );
    // A silence is only a suspicion: the hung primary still holds the endpoint, so nobody says
    // it will promote.
    for (const lost of losses) expect(lost).toMatchObject({ cause: 'silence', instanceId: 'p0', willPromote: false, reason: 'suspected' });
    s1.send({ cmd: 'status' });
    const st = await s1.next((e) => e.type === 'status', FAST, 'status');
    expect(st.status).toMatchObject({ role: 'secondary', primarySuspected: true });
    const back = Promise.all([s1, s2].map((s) => s.next((e) => e.type === 'primaryChanged' && e.instanceId === 'p0', FAST)));
    primary.kill('SIGCONT');
    await back;
    // Safety: the endpoint stayed held, so nobody was promoted during the hang.
    for (const s of [s1, s2]) expect(s.events.filter((e) => e.type === 'promote')).toEqual([]);
    expect(primary.alive).toBe(true);
  });

  it('a disabled secondary notices a crash by silence and promotes (reason silence) once enabled', async () => {
    setup();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const { primary, secondaries } = await startCluster(endpoint, 1, { heartbeatTimeout: 300, enabled: false });
    const [s1] = secondaries as [WatcherProcess];
    primary.kill('SIGKILL');
    const lost = await s1.waitFor((e) => e.type === 'primaryLost', FAST, 'primaryLost');
    expect(lost).toMatchObject({ cause: 'silence', willPromote: false, reason: 'disabled' });
    s1.send({ cmd: 'setEnabled', value: true });
    const change = await becamePrimary(s1);
    expect(change.reason).toBe('silence');
  });

  it('a disabled secondary reports the lost primary and promotes only once enabled', async () => {
    setup();
    const endpoint = uniqueIpc('fw-dis');
    const { primary, secondaries } = await startCluster(endpoint, 1, { enabled: false });
    const [s1] = secondaries as [WatcherProcess];
    primary.send({ cmd: 'shutdown' });
    const lost = await s1.waitFor((e) => e.type === 'primaryLost', FAST, 'primaryLost');
    expect(lost.willPromote).toBe(false);
    expect(lost.instanceId).toBe('p0');
    await primary.exited;
    // Still secondary: ask for status and check it reports the suspicion.
    s1.send({ cmd: 'status' });
    const st = await s1.next((e) => e.type === 'status', FAST, 'status');
    expect(st.status).toMatchObject({ role: 'secondary', primarySuspected: true, enabled: false });
    s1.send({ cmd: 'setEnabled', value: true });
    const change = await becamePrimary(s1);
    expect(change.reason).toBe('shutdown');
    // Ordering proves it waited: no onPromote before it was enabled.
    const enabledAt = s1.events.findIndex((e) => e.type === 'enabledSet');
    const promotedAt = s1.events.findIndex((e) => e.type === 'promote');
    expect(enabledAt).toBeGreaterThanOrEqual(0);
    expect(promotedAt).toBeGreaterThan(enabledAt);
  });

  it('a failed onPromote gives the endpoint back, and the node retries and becomes primary', async () => {
    setup();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const primary = cluster.spawn(config(endpoint, 'p0', { role: 'primary' }));
    await ready(primary);
    const s1 = cluster.spawn(config(endpoint, 's1', { role: 'secondary', failPromotes: 2, retryInterval: 30 }));
    await ready(s1);
    await follows(s1, 'p0');
    primary.send({ cmd: 'shutdown' });
    const change = await becamePrimary(s1, FAST);
    const failures = s1.events.filter((e) => e.type === 'promotionFailed');
    expect(failures).toHaveLength(2);
    const promotes = s1.events.filter((e) => e.type === 'promote').map((e) => e.epoch as number);
    expect(promotes).toHaveLength(3);
    // Every attempt takes a fresh, larger epoch.
    expect(promotes).toEqual([...promotes].sort((a, b) => a - b));
    expect(new Set(promotes).size).toBe(3);
    expect(change.epoch).toBe(promotes[2]);
  });

  it('three secondaries race five times in a row: exactly one wins each time, by shutdown (a chain of graceful failovers)', async () => {
    setup();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const { primary, secondaries } = await startCluster(endpoint, 3);
    let current = primary;
    let pool = [...secondaries];
    let epoch = 1;
    for (let round = 1; round <= 5; round++) {
      current.send({ cmd: 'shutdown' });
      epoch++;
      const next = epoch;
      const winner = await Promise.any(
        pool.map((s) => s.waitFor((e) => e.type === 'roleChanged' && e.to === 'primary' && e.epoch === next, FAST).then(() => s)),
      );
      await current.exited;
      // Every one of them is taken as the graceful handover it is, never as a crash.
      const change = winner.events.find((e) => e.type === 'roleChanged' && e.to === 'primary' && e.epoch === next);
      expect(change?.reason).toBe('shutdown');
      const losers = pool.filter((s) => s !== winner);
      await Promise.all(losers.map((s) => s.waitFor((e) => e.type === 'primaryChanged' && e.instanceId === winner.id, FAST)));
      for (const s of losers) expect(s.events.filter((e) => e.type === 'promote' && e.epoch === epoch)).toHaveLength(0);
      expect(cluster.primaries()).toEqual([winner]);
      // Replace the winner in the pool so three race again next round.
      const fresh = cluster.spawn(config(endpoint, `r${round}`, { role: 'secondary' }));
      await ready(fresh);
      await follows(fresh, winner.id);
      current = winner;
      pool = [...losers, fresh];
    }
  });

  it('keeps epochs growing across restarts through the shared workdir', async () => {
    setup();
    const endpoint = uniqueIpc('fw-epoch');
    const a = cluster.spawn(config(endpoint, 'a'));
    await ready(a);
    expect((await becamePrimary(a)).epoch).toBe(1);
    a.send({ cmd: 'shutdown' });
    await a.exited;
    const b = cluster.spawn(config(endpoint, 'b'));
    await ready(b);
    expect((await becamePrimary(b)).epoch).toBe(2);
    b.send({ cmd: 'shutdown' });
    await b.exited;
    const a2 = cluster.spawn(config(endpoint, 'a'));
    await ready(a2);
    expect((await becamePrimary(a2)).epoch).toBe(3);
  });

  it('auto role: the first instance becomes primary and the next one follows it', async () => {
    setup();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const first = cluster.spawn(config(endpoint, 'first'));
    const firstReady = await ready(first);
    expect(firstReady.role).toBe('primary');
    const second = cluster.spawn(config(endpoint, 'second'));
    const secondReady = await ready(second);
    expect(secondReady.role).toBe('secondary');
    await follows(second, 'first');
  });

  it('a primary-role watcher fails to start with ERR_FAILOVER_ENDPOINT_IN_USE when the endpoint is held', async () => {
    setup();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const first = cluster.spawn(config(endpoint, 'first', { role: 'primary' }));
    await ready(first);
    const second = cluster.spawn(config(endpoint, 'second', { role: 'primary' }));
    const failed = await second.waitFor((e) => e.type === 'startFailed', READY, 'startFailed');
    expect(failed.code, String(failed.message)).toBe('ERR_FAILOVER_ENDPOINT_IN_USE');
    expect((await second.exited).code).toBe(3);
  });

  it('stepDown hands the role to a secondary at once and stays secondary', async () => {
    setup();
    const endpoint = uniqueIpc('fw-step');
    const { primary, secondaries } = await startCluster(endpoint, 1);
    const [s1] = secondaries as [WatcherProcess];
    primary.send({ cmd: 'stepDown' });
    const demote = await primary.waitFor((e) => e.type === 'demote', FAST, 'demote');
    expect(demote.reason).toBe('stepdown');
    const change = await becamePrimary(s1);
    expect(change.reason).toBe('shutdown');
    await follows(primary, 's1');
    expect(cluster.primaries()).toEqual([s1]);
  });
});
