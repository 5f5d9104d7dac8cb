/**
 * Application metadata between real processes (PROTOCOL.md section 11): a takeover hands the new
 * primary's metadata to its followers, a runtime update reaches them, and a raw ZeroMQ publisher
 * sending oversized or malformed metadata has it dropped and counted while its heartbeats still
 * keep the follower from taking over.
 */
import { Packr } from 'msgpackr';
import * as zmq from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, tempWorkdir, uniqueIpc, waitFollows, waitPrimary, waitReady } from '../../harness/cluster.js';

let cluster: Cluster | undefined;
let pub: zmq.Publisher | undefined;
let workdir: ReturnType<typeof tempWorkdir> | undefined;

afterEach(async () => {
  pub?.close();
  pub = undefined;
  await cluster?.stopAll();
  workdir?.cleanup();
});

interface Status {
  role: string;
  primarySuspected: boolean;
  heartbeatsSeen: number;
  primary: { instanceId: string; metadata: Record<string, string> } | undefined;
  dropped: Record<string, number>;
}

async function statusOf(node: ReturnType<Cluster['spawn']>): Promise<Status> {
  const reply = node.next((e) => e.type === 'status', 5000, 'status');
  node.send({ cmd: 'status' });
  return ((await reply) as unknown as { status: Status }).status;
}

describe('metadata between processes', () => {
  it('a takeover carries the new primary metadata', { timeout: 60_000 }, async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = uniqueIpc('fw-meta');
    const base = { endpoint, workdir: workdir.path, heartbeatInterval: 100, heartbeatTimeout: 2000 };
    const a = cluster.spawn({ ...base, instanceId: 'a', role: 'primary', metadata: { port: '7001', zone: 'a' } });
    await waitReady(a);
    const b = cluster.spawn({ ...base, instanceId: 'b', priority: 1, metadata: { port: '7002' } });
    const c = cluster.spawn({ ...base, instanceId: 'c', priority: 2, enabled: false });
    await Promise.all([waitReady(b), waitReady(c)]);
    const toA = (await waitFollows(c, 'a')) as unknown as { metadata: Record<string, string> };
    expect(toA.metadata).toEqual({ port: '7001', zone: 'a' });

    // A runtime update reaches the follower as primaryMetadataChanged.
    const updated = c.next((e) => e.type === 'primaryMetadataChanged', 5000, 'primaryMetadataChanged');
    a.send({ cmd: 'setMetadata', metadata: { port: '7011', zone: 'a' } });
    expect(((await updated) as unknown as { metadata: unknown }).metadata).toEqual({ port: '7011', zone: 'a' });

    // a stops: b takes over and c learns b's metadata with the primaryChanged.
    const toB = c.next((e) => e.type === 'primaryChanged' && e.instanceId === 'b', 10_000, 'primaryChanged to b');
    await a.stop();
    await waitPrimary(b, 10_000);
    expect(((await toB) as unknown as { metadata: unknown }).metadata).toEqual({ port: '7002' });
    const st = await statusOf(c);
    expect(st.primary?.instanceId).toBe('b');
    expect(st.primary?.metadata).toEqual({ port: '7002' });

    c.send({ cmd: 'liveNodes' });
    const { nodes } = (await c.next((e) => e.type === 'liveNodes', 5000, 'liveNodes')) as unknown as {
      nodes: Array<{ instanceId: string; role: string; metadata?: Record<string, string> }>;
    };
    expect(nodes.find((n) => n.role === 'primary')).toMatchObject({ instanceId: 'b', metadata: { port: '7002' } });

    // Bad metadata from the application is refused, naming the key; the announced one stays.
    b.send({ cmd: 'setMetadata', metadata: { 'bad key': 'x' } });
    const refused = await b.next((e) => e.type === 'metadataRefused', 5000, 'metadataRefused');
    expect(refused.option).toBe('metadata.bad key');
  });

  it('drops and counts bad metadata, keeps the heartbeat', { timeout: 60_000 }, async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = uniqueIpc('fw-meta-bad');
    pub = new zmq.Publisher();
    await pub.bind(endpoint);
    // heartbeatTimeout 600 ms: a follower that did not count the bad heartbeats would try to
    // take over (and report primaryLost) within the 2 s they are sent for.
    const s = cluster.spawn({ endpoint, instanceId: 's', workdir: workdir.path, role: 'secondary', heartbeatInterval: 50, heartbeatTimeout: 600 });
    await waitReady(s);
    const packr = new Packr({ useRecords: false, moreTypes: false });
    let seq = 0;
    const beat = (metadata: unknown): Buffer[] => [
      Buffer.from('instance.heartbeat'),
      packr.pack({ version: 1, instanceId: 'raw', epoch: 5, seq: ++seq, sentAt: Date.now(), pid: 4242, host: 'test', heartbeatInterval: 50, metadata }),
    ];
    const following = s.waitFor((e) => e.type === 'primaryChanged' && e.instanceId === 'raw', 10_000, 'follow raw');
    let followed = false;
    void following.then(() => (followed = true), () => undefined);
    for (let i = 0; i < 500 && !followed; i++) {
      await pub.send(beat({ port: '9000' }));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(((await following) as unknown as { metadata: unknown }).metadata).toEqual({ port: '9000' });

    const bad: unknown[] = [
      Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])), // 17 keys
      { port: 'x'.repeat(300) }, // a value over 256 bytes
      Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'x'.repeat(256)])), // over 2048 bytes
      { 'bad key': 'x' },
      { port: 9000 },
      'port=9000',
      [1, 2],
      null,
    ];
    const before = await statusOf(s);
    const rounds = 5;
    // About 2 s of heartbeats (every 50 ms) that carry only bad metadata.
    for (let r = 0; r < rounds; r++) {
      for (const metadata of bad) {
        await pub.send(beat(metadata));
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    // A valid heartbeat with new metadata: once reported, every earlier message was handled.
    const caughtUp = s.next((e) => e.type === 'primaryMetadataChanged', 10_000, 'catch up');
    await pub.send(beat({ port: '9001' }));
    expect(((await caughtUp) as unknown as { metadata: unknown }).metadata).toEqual({ port: '9001' });

    const st = await statusOf(s);
    expect(st.dropped.metadata).toBe(bad.length * rounds);
    expect(st.dropped.total).toBe(0);
    expect(st.heartbeatsSeen - before.heartbeatsSeen).toBe(bad.length * rounds + 1);
    expect(st.role).toBe('secondary');
    expect(st.primarySuspected).toBe(false);
    expect(st.primary?.metadata).toEqual({ port: '9001' });
    // The bad ones changed nothing: no event between the first metadata and the last.
    expect(s.events.filter((e) => e.type === 'primaryMetadataChanged').length).toBe(1);
    expect(s.events.filter((e) => e.type === 'primaryLost' || e.type === 'promote')).toEqual([]);
    expect(s.alive).toBe(true);
  });
});
