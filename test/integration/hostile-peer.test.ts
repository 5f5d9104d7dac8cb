/**
 * A hostile peer, in its own process, against a running cluster of watcher processes.
 *
 * What it can reach (see harness/hostile-peer.ts and docs/SECURITY.md): the primary's XPUB, as a
 * subscriber (anything sent upstream, subscription floods, raw bytes), and the endpoint itself
 * when it is free (a squatter that publishes to whoever connects). It cannot publish to the
 * secondaries of a running cluster: only the binder does.
 *
 * Checked throughout: exactly one primary, no crash, no role change or suspicion, RSS of every
 * watcher under a bound, and the drops counted in status(). With CURVE: none of it is accepted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, freePort, tempWorkdir, waitFollows, waitPrimary, waitReady, type NodeEvent, type WatcherProcess } from '../../harness/cluster.js';
import type { HostileConfig, HostileReport } from '../../harness/hostile-peer.js';
import type { NodeConfig } from '../../harness/watcher-node.js';
import { encode } from '../../src/protocol/codec.js';
import type { CurveOptions } from '../../src/transport/zmq/curve.js';

const HOSTILE = fileURLToPath(new URL('../../harness/hostile-peer.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ATTACK_MS = Number(process.env.FW_ATTACK_MS ?? 3000);
/**
 * RSS a watcher may grow by during the attack: the primary's own tables are capped, its heap
 * grows to a steady state under the allocation churn of a flood (measured 35-60 MB over 3 to 12
 * second attacks, independent of the duration). Not covered by this bound, and documented in
 * docs/SECURITY.md: libzmq keeps every distinct topic a connected peer subscribes, per
 * connection, until it disconnects (about 2.4 KB each); only CURVE keeps strangers from
 * subscribing at all. The attacker here resets its connections (an oversized frame every 1000
 * messages), as a flood of garbage does.
 */
const RSS_GROWTH_BOUND = 96 * 1024 * 1024;

let cluster: Cluster | undefined;
let workdir: ReturnType<typeof tempWorkdir> | undefined;
const hostiles: ChildProcess[] = [];
const sockets: zmq.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  for (const h of hostiles.splice(0)) if (h.exitCode === null && h.signalCode === null && h.pid !== undefined) process.kill(h.pid, 'SIGKILL');
  await cluster?.stopAll();
  workdir?.cleanup();
});

/** The hostile process and the messages it reported. */
class Hostile {
  readonly child: ChildProcess;
  readonly events: NodeEvent[] = [];
  readonly #waiters = new Set<() => void>();
  stderr = '';

  constructor(config: HostileConfig) {
    this.child = spawn(process.execPath, ['--import', 'tsx', HOSTILE, JSON.stringify(config)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    hostiles.push(this.child);
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (c: string) => {
      if (this.stderr.length < 20_000) this.stderr += c;
    });
    this.child.on('message', (m) => {
      this.events.push(m as NodeEvent);
      for (const w of this.#waiters) w();
    });
  }

  waitFor(type: string, timeout: number): Promise<NodeEvent> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const e = this.events.find((x) => x.type === type);
        if (e === undefined) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`hostile peer: no ${type} within ${timeout} ms; events: ${this.events.map((e) => e.type).join(',')}; stderr: ${this.stderr.slice(-1500)}`));
      }, timeout);
      this.#waiters.add(check);
      check();
    });
  }

  send(cmd: string): void {
    if (this.child.connected) this.child.send({ cmd });
  }
}

async function ask(n: WatcherProcess, cmd: 'status' | 'memory' | 'liveNodes'): Promise<NodeEvent> {
  n.send({ cmd });
  return n.next((e) => e.type === cmd, 10_000, cmd);
}

type Status = {
  role: string;
  epoch: number;
  heartbeatsSeen: number;
  presenceDropped: number;
  probesIgnored: number;
  peersRefused: number;
  subscriptionsIgnored: number;
  handshakesFailed: number;
  primary: { instanceId: string } | undefined;
  dropped: Record<string, number> & { total: number };
};
const statusOf = async (n: WatcherProcess): Promise<Status> => (await ask(n, 'status')).status as Status;
const rssOf = async (n: WatcherProcess): Promise<number> => (await ask(n, 'memory')).rss as number;

/** Samples RSS of every node every 250 ms until `done` settles; returns the peak per node. */
async function peakRss(nodes: WatcherProcess[], done: Promise<unknown>): Promise<number[]> {
  const peaks = nodes.map(() => 0);
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    const samples = await Promise.all(nodes.map((n) => rssOf(n)));
    samples.forEach((s, i) => (peaks[i] = Math.max(peaks[i] as number, s)));
    await Promise.race([done, new Promise((r) => setTimeout(r, 250))]).catch(() => undefined);
  }
  return peaks;
}

/** Events that would mean a false promotion, demotion or suspicion. */
const disruptive = (n: WatcherProcess, since: number): NodeEvent[] =>
  n.events.filter(
    (e) => e.at >= since && ['roleChanged', 'promote', 'demote', 'primaryLost', 'primaryChanged', 'promotionFailed'].includes(e.type),
  );

const server = zmq.curveKeyPair();
const pairs = { p1: zmq.curveKeyPair(), s1: zmq.curveKeyPair(), s2: zmq.curveKeyPair() };
const curveOf = (id: keyof typeof pairs): CurveOptions => ({
  serverPublicKey: server.publicKey,
  serverSecretKey: server.secretKey,
  publicKey: pairs[id].publicKey,
  secretKey: pairs[id].secretKey,
  allowedClientKeys: Object.values(pairs).map((k) => k.publicKey),
});

function spawnNode(endpoint: string, id: keyof typeof pairs, curve: boolean, extra: Partial<NodeConfig> = {}): WatcherProcess {
  return (cluster as Cluster).spawn({
    endpoint,
    instanceId: id,
    workdir: (workdir as { path: string }).path,
    heartbeatInterval: 100,
    heartbeatTimeout: 1500,
    enabled: true,
    ...(curve ? { curve: curveOf(id) } : {}),
    ...extra,
  });
}

/** A running 3-node cluster: p1 primary, s1 and s2 following it. */
async function runningCluster(curve: boolean): Promise<{ endpoint: string; p1: WatcherProcess; s1: WatcherProcess; s2: WatcherProcess }> {
  cluster = new Cluster();
  workdir = tempWorkdir();
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const p1 = spawnNode(endpoint, 'p1', curve);
  await waitPrimary(p1, 20_000);
  const s1 = spawnNode(endpoint, 's1', curve);
  const s2 = spawnNode(endpoint, 's2', curve);
  await Promise.all([waitReady(s1), waitReady(s2)]);
  await Promise.all([waitFollows(s1, 'p1'), waitFollows(s2, 'p1')]);
  return { endpoint, p1, s1, s2 };
}

async function attackRunningCluster(curve: boolean): Promise<{
  report: HostileReport;
  primary: Status;
  secondaries: Status[];
  liveNodes: number;
  growth: number[];
}> {
  const { endpoint, p1, s1, s2 } = await runningCluster(curve);
  const nodes = [p1, s1, s2];
  const before = await Promise.all(nodes.map((n) => rssOf(n)));
  const since = Date.now();
  const hostile = new Hostile({
    endpoint,
    mode: 'subscriber',
    durationMs: ATTACK_MS,
    fakeIds: 5000,
    // The attacker knows the server's public key (it is public) and has a pair of its own.
    ...(curve ? { curve: { serverPublicKey: server.publicKey, ...zmq.curveKeyPair() } } : {}),
  });
  const reported = hostile.waitFor('report', ATTACK_MS + 20_000);
  const peaks = await peakRss(nodes, reported);
  const report = (await reported) as unknown as HostileReport;

  // Still one primary, nobody crashed, nobody changed role or suspected the primary.
  for (const n of nodes) {
    expect(n.alive, `${n.id} alive`).toBe(true);
    expect(disruptive(n, since), `${n.id}: no role change or suspicion`).toEqual([]);
  }
  expect(cluster?.primaries()).toEqual([p1]);
  expect(report.bindSuccesses).toBe(0);
  expect(report.bindAttempts).toBeGreaterThan(10);
  expect(report.sent).toBeGreaterThan(1000);
  const growth = peaks.map((p, i) => p - (before[i] as number));
  if (process.env.FW_DEBUG) console.log('rss before', before, 'growth', growth, report);
  for (const [i, g] of growth.entries()) expect(g, `${nodes[i]?.id} RSS growth`).toBeLessThan(RSS_GROWTH_BOUND);
  const liveNodes = ((await ask(p1, 'liveNodes')).nodes as unknown[]).length;
  return { report, primary: await statusOf(p1), secondaries: await Promise.all([statusOf(s1), statusOf(s2)]), liveNodes, growth };
}

describe('a hostile peer against a running cluster', () => {
  it('without CURVE: eavesdrops, but its floods, fake ids and forgeries change nothing and are counted', async () => {
    const { report, primary, secondaries, liveNodes } = await attackRunningCluster(false);
    // What it could do: read the heartbeats (documented: use CURVE beyond loopback).
    expect(report.eavesdropped).toBeGreaterThan(0);
    // Fake ids: the presence table is capped at 1024, the rest counted.
    expect(primary.presenceDropped).toBeGreaterThan(0);
    expect(liveNodes).toBeLessThanOrEqual(1 + 1024);
    expect(primary.subscriptionsIgnored).toBeGreaterThan(0);
    expect(primary.probesIgnored).toBeGreaterThan(0);
    expect(primary.role).toBe('primary');
    expect(primary.epoch).toBe(1);
    // Nothing forged reached a secondary: it is not the binder.
    for (const s of secondaries) {
      expect(s.dropped.total).toBe(0);
      expect(s.primary?.instanceId).toBe('p1');
      expect(s.epoch).toBe(1);
    }
  });

  it('with CURVE: nothing is accepted, not even a subscription', async () => {
    const { report, primary, secondaries, liveNodes } = await attackRunningCluster(true);
    expect(report.eavesdropped).toBe(0);
    expect(primary.presenceDropped).toBe(0);
    expect(primary.subscriptionsIgnored).toBe(0);
    expect(primary.probesIgnored).toBe(0);
    expect(primary.peersRefused).toBeGreaterThan(0);
    expect(liveNodes).toBe(3);
    for (const s of secondaries) {
      expect(s.dropped.total).toBe(0);
      expect(s.primary?.instanceId).toBe('p1');
    }
  });
});

/** Two nodes start on an endpoint a squatter already holds; it then attacks them for ATTACK_MS. */
async function squat(curve: boolean): Promise<{ a: WatcherProcess; b: WatcherProcess; hostile: Hostile; statuses: Status[]; growth: number[]; since: number }> {
  cluster = new Cluster();
  workdir = tempWorkdir();
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const hostile = new Hostile({ endpoint, mode: 'squatter', durationMs: ATTACK_MS, fakeIds: 0 });
  await hostile.waitFor('bound', 20_000);
  const a = spawnNode(endpoint, 'p1', curve);
  const b = spawnNode(endpoint, 's1', curve);
  await Promise.all([waitReady(a), waitReady(b)]);
  if (!curve) await Promise.all([waitFollows(a, 'squatter'), waitFollows(b, 'squatter')]);
  else await new Promise((r) => setTimeout(r, 500));
  const before = await Promise.all([a, b].map((n) => rssOf(n)));
  const since = Date.now();
  hostile.send('attack');
  const attacked = hostile.waitFor('attacked', ATTACK_MS + 20_000);
  const peaks = await peakRss([a, b], attacked);
  await attacked;
  // Let the followers drain what is queued (the squatter's last heartbeat has epoch 4).
  if (!curve) await Promise.all([a, b].map((n) => n.waitFor((e) => e.type === 'primaryChanged' && e.epoch === 4, 10_000, 'catch up')));
  const statuses = await Promise.all([statusOf(a), statusOf(b)]);
  for (const n of [a, b]) expect(n.alive, `${n.id} alive`).toBe(true);
  const growth = peaks.map((p, i) => p - (before[i] as number));
  if (process.env.FW_DEBUG) console.log('rss before', before, 'growth', growth, statuses);
  for (const g of growth) expect(g).toBeLessThan(RSS_GROWTH_BOUND);
  return { a, b, hostile, statuses, growth, since };
}

describe('a hostile peer that binds the endpoint first (a squatter)', () => {
  it('without CURVE: is followed, but no node promotes or crashes, its garbage is dropped and counted, memory stays bounded', async () => {
    const { a, b, hostile, statuses, since } = await squat(false);
    for (const st of statuses) {
      expect(st.role).toBe('secondary');
      expect(st.dropped.total).toBeGreaterThan(100);
      for (const reason of ['frames', 'topic', 'oversize', 'msgpack', 'shape']) expect(st.dropped[reason], reason).toBeGreaterThan(0);
      // Epochs far in the future were accepted from the holder of the endpoint: squatting
      // without CURVE inflates the cluster's epoch (docs/SECURITY.md).
      expect(st.epoch).toBeGreaterThanOrEqual(1_000_000_000_000);
    }
    // Forged shutdowns may make them try to take over; the squatter's bind makes every try fail.
    for (const n of [a, b]) expect(n.events.filter((e) => e.at >= since && (e.type === 'promote' || (e.type === 'roleChanged' && e.to === 'primary')))).toEqual([]);

    // Once it leaves, the cluster elects exactly one primary again.
    hostile.send('leave');
    const winner = await Promise.race([waitPrimary(a, 10_000).then(() => a), waitPrimary(b, 10_000).then(() => b)]);
    await waitFollows(winner === a ? b : a, winner.id, 10_000);
    expect(cluster?.primaries()).toEqual([winner]);
  });

  it('with CURVE: is never followed, not one of its messages is even decoded, and the cluster elects once it leaves', async () => {
    const { a, b, hostile, statuses, since } = await squat(true);
    for (const st of statuses) {
      expect(st.role).toBe('secondary');
      expect(st.primary).toBeUndefined();
      expect(st.heartbeatsSeen).toBe(0);
      expect(st.dropped.total).toBe(0);
      expect(st.epoch).toBe(0);
      expect(st.handshakesFailed).toBeGreaterThan(0);
    }
    for (const n of [a, b]) expect(disruptive(n, since).filter((e) => e.type !== 'primaryLost')).toEqual([]);

    hostile.send('leave');
    const winner = await Promise.race([waitPrimary(a, 10_000).then(() => a), waitPrimary(b, 10_000).then(() => b)]);
    await waitFollows(winner === a ? b : a, winner.id, 10_000);
    expect(winner.events.find((e) => e.type === 'roleChanged' && e.to === 'primary')?.epoch).toBe(1);
    expect(cluster?.primaries()).toEqual([winner]);
  });
});

it('a secondary keeps listening after the holder sends a frame over the size limit (ZeroMQ would not reconnect)', async () => {
  cluster = new Cluster();
  workdir = tempWorkdir();
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const pub = new zmq.Publisher({ linger: 0 });
  sockets.push(pub);
  await pub.bind(endpoint);
  const s = cluster.spawn({ endpoint, instanceId: 's', workdir: workdir.path, role: 'secondary', heartbeatInterval: 50, heartbeatTimeout: 60_000, enabled: true });
  await waitReady(s);
  const hb = (epoch: number, seq: number) =>
    encode('instance.heartbeat', { version: 1, instanceId: 'holder', epoch, seq, sentAt: Date.now(), pid: 4242, host: 'h' });
  let seq = 0;
  const publishUntil = async (epoch: number, done: Promise<unknown>): Promise<void> => {
    let stop = false;
    void done.finally(() => (stop = true));
    while (!stop) {
      await pub.send(hb(epoch, ++seq));
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const first = waitFollows(s, 'holder', 10_000);
  await publishUntil(7, first);
  await pub.send([Buffer.from('instance.heartbeat'), Buffer.alloc(1_000_000)]);
  const again = s.waitFor((e) => e.type === 'primaryChanged' && e.epoch === 8, 10_000, 'epoch 8 after the huge frame');
  await publishUntil(8, again);
  const st = await statusOf(s);
  expect((st as unknown as { reconnects: number }).reconnects).toBeGreaterThan(0);
});
