/**
 * CURVE over real processes: nodes with the cluster's keys elect and fail over as usual; a
 * process without them is never followed as primary, reads no heartbeat and is not admitted.
 */
import * as zmq from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, freePort, tempWorkdir, waitPrimary, waitReady, waitFollows, type WatcherProcess } from '../../harness/cluster.js';
import type { NodeConfig } from '../../harness/watcher-node.js';
import { encode } from '../../src/protocol/codec.js';
import type { CurveOptions } from '../../src/transport/zmq/curve.js';

let cluster: Cluster | undefined;
let workdir: ReturnType<typeof tempWorkdir> | undefined;
const sockets: zmq.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await cluster?.stopAll();
  workdir?.cleanup();
});

const server = zmq.curveKeyPair();
const clients = { a: zmq.curveKeyPair(), b: zmq.curveKeyPair(), c: zmq.curveKeyPair(), spare: zmq.curveKeyPair() };
const allowed = Object.values(clients).map((k) => k.publicKey);

function curveOf(name: keyof typeof clients): CurveOptions {
  return {
    serverPublicKey: server.publicKey,
    serverSecretKey: server.secretKey,
    publicKey: clients[name].publicKey,
    secretKey: clients[name].secretKey,
    allowedClientKeys: allowed,
  };
}

function node(endpoint: string, id: keyof typeof clients, extra: Partial<NodeConfig> = {}): WatcherProcess {
  return (cluster as Cluster).spawn({
    endpoint,
    instanceId: id,
    workdir: (workdir as { path: string }).path,
    heartbeatInterval: 50,
    heartbeatTimeout: 400,
    enabled: true,
    curve: curveOf(id),
    reportLogs: true,
    ...extra,
  });
}

async function statusOf(n: WatcherProcess): Promise<Record<string, unknown>> {
  n.send({ cmd: 'status' });
  const e = await n.next((x) => x.type === 'status', 5000, 'status');
  return e.status as Record<string, unknown>;
}

async function liveIds(n: WatcherProcess): Promise<string[]> {
  n.send({ cmd: 'liveNodes' });
  const e = await n.next((x) => x.type === 'liveNodes', 5000, 'liveNodes');
  return (e.nodes as Array<{ instanceId: string }>).map((x) => x.instanceId).sort();
}

/** Receives on `sub` for `ms` and returns how many messages arrived. */
async function countReceived(sub: zmq.Subscriber, ms: number): Promise<number> {
  let count = 0;
  const until = Date.now() + ms;
  sub.receiveTimeout = 50;
  while (Date.now() < until) {
    try {
      await sub.receive();
      count++;
    } catch {
      // receive timeout: keep listening until the window ends
    }
  }
  return count;
}

const waitUntil = async (pred: () => Promise<boolean>, timeout: number, what: string): Promise<void> => {
  const deadline = Date.now() + timeout;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('CURVE', () => {
  it('elects, admits the cluster\'s nodes and fails over after a crash, keys never in status', async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const a = node(endpoint, 'a');
    await waitPrimary(a, 20_000);
    const b = node(endpoint, 'b');
    const c = node(endpoint, 'c');
    await Promise.all([waitReady(b), waitReady(c)]);
    await Promise.all([waitFollows(b, 'a'), waitFollows(c, 'a')]);
    await waitUntil(async () => (await liveIds(a)).join() === 'a,b,c', 5000, 'a to list b and c');

    const status = await statusOf(a);
    expect(status.curve).toBe(true);
    const shown = JSON.stringify(status);
    for (const k of [server, clients.a, clients.b]) {
      expect(shown).not.toContain(k.publicKey);
      expect(shown).not.toContain(k.secretKey);
    }

    a.kill('SIGKILL');
    const next = await Promise.race([waitPrimary(b, 5000), waitPrimary(c, 5000)]);
    expect(next.epoch).toBe(2);
    expect(cluster.primaries()).toHaveLength(1);

    // No key in any log line of any node, at any level.
    const logs = cluster.nodes.flatMap((n) => n.events.filter((e) => e.type === 'log').map((e) => String(e.message)));
    expect(logs.length).toBeGreaterThan(5);
    const text = logs.join('\n');
    for (const k of [server, ...Object.values(clients)]) {
      expect(text).not.toContain(k.publicKey);
      expect(text).not.toContain(k.secretKey);
    }
  });

  it('never follows a process that binds first without the server key, then elects once it leaves', async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    // Squatter 1: no CURVE at all. Squatter 2 (below): a CURVE server with a key pair of its own.
    const squatter = new zmq.Publisher({ linger: 0 });
    sockets.push(squatter);
    await squatter.bind(endpoint);
    let seq = 0;
    const forge = setInterval(() => {
      for (const topic of ['instance.heartbeat', 'instance.promoted', 'instance.shutdown'] as const) {
        void squatter
          .send(encode(topic, { version: 1, instanceId: 'intruder', epoch: 1_000_000, seq: ++seq, sentAt: Date.now(), pid: 1, host: 'x' }))
          .catch(() => undefined);
      }
    }, 10);
    try {
      const a = node(endpoint, 'a');
      const b = node(endpoint, 'b');
      await Promise.all([waitReady(a), waitReady(b)]);
      // Several heartbeat timeouts: every forged message would have been followed by now.
      await new Promise((r) => setTimeout(r, 1500));
      for (const n of [a, b]) {
        const st = await statusOf(n);
        expect(st.role).toBe('secondary');
        expect(st.primary).toBeUndefined();
        expect(st.heartbeatsSeen).toBe(0);
        expect((st.dropped as { total: number }).total).toBe(0);
        expect(st.epoch).toBe(0);
        expect(st.handshakesFailed).toBeGreaterThan(0);
        expect(n.events.filter((e) => e.type === 'primaryChanged' || e.type === 'promote')).toEqual([]);
      }

      // Swap in a CURVE server with the wrong server key pair.
      clearInterval(forge);
      squatter.close();
      const wrong = zmq.curveKeyPair();
      const curveSquatter = new zmq.Publisher({ linger: 0, curveServer: true, curveSecretKey: wrong.secretKey });
      sockets.push(curveSquatter);
      // A node may take the endpoint in the gap; then there is nothing to squat.
      const bound = await curveSquatter.bind(endpoint).then(
        () => true,
        () => false,
      );
      if (bound) {
        for (let i = 0; i < 30; i++) {
          await curveSquatter
            .send(encode('instance.heartbeat', { version: 1, instanceId: 'intruder2', epoch: 2_000_000, seq: i, sentAt: Date.now(), pid: 1, host: 'x' }))
            .catch(() => undefined);
          await new Promise((r) => setTimeout(r, 20));
        }
        for (const n of [a, b]) {
          const st = await statusOf(n);
          expect(st.heartbeatsSeen).toBe(0);
          expect(st.epoch).toBe(0);
        }
      }
      curveSquatter.close();
      // The endpoint is free: one of the cluster's nodes takes it, the other follows.
      const winner = await Promise.race([waitPrimary(a, 5000).then(() => a), waitPrimary(b, 5000).then(() => b)]);
      const follower = winner === a ? b : a;
      await waitFollows(follower, winner.id);
      expect(cluster.primaries()).toEqual([winner]);
      expect((await statusOf(winner)).epoch).toBe(1);
    } finally {
      clearInterval(forge);
    }
  });

  it('gives no heartbeat and no membership to a subscriber without an admitted key', async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const a = node(endpoint, 'a');
    await waitPrimary(a, 20_000);

    // No CURVE; CURVE with the right server key but a client key that is not admitted; CURVE
    // with the wrong server key. None hears anything or shows up in liveNodes().
    const stranger = zmq.curveKeyPair();
    const plain = new zmq.Subscriber({ linger: 0 });
    const unlisted = new zmq.Subscriber({ linger: 0, curveServerKey: server.publicKey, curvePublicKey: stranger.publicKey, curveSecretKey: stranger.secretKey });
    const wrongServer = new zmq.Subscriber({ linger: 0, curveServerKey: stranger.publicKey, curvePublicKey: clients.spare.publicKey, curveSecretKey: clients.spare.secretKey });
    // The control: an admitted key that no node uses. It must hear the heartbeats.
    const admitted = new zmq.Subscriber({ linger: 0, curveServerKey: server.publicKey, curvePublicKey: clients.spare.publicKey, curveSecretKey: clients.spare.secretKey });
    const intruders = [plain, unlisted, wrongServer];
    for (const s of [...intruders, admitted]) {
      sockets.push(s);
      s.subscribe('instance.');
      s.subscribe('presence.0.intruder');
      s.connect(endpoint);
    }
    const counts = await Promise.all([...intruders, admitted].map((s) => countReceived(s, 1000)));
    expect(counts.slice(0, 3)).toEqual([0, 0, 0]);
    expect(counts[3]).toBeGreaterThan(5);

    const ids = await liveIds(a);
    expect(ids).toEqual(['a', 'intruder']); // only the admitted control's presence subscription
    const status = await statusOf(a);
    expect(status.peersRefused).toBeGreaterThanOrEqual(3);
    expect(status.role).toBe('primary');
  });
});
