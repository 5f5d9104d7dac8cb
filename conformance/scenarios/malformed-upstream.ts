/**
 * Malformed input towards a peer primary, from below: raw bytes on fresh connections to the
 * endpoint (some after a valid ZMTP signature), and subscriptions no node sends (an oversized one,
 * presence and probe topics that break PROTOCOL.md 5's grammar, bytes that are not UTF-8). The
 * peer must stay up and primary and keep publishing heartbeats (PROTOCOL.md 2.3, 5).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import * as zmq from 'zeromq';
import { CHANGE_BOUND, check, peerPrimary, type Scenario } from '../scenario.js';
import { endpointPath } from '../wire.js';

/** How the kit opens a raw stream to the endpoint. */
function rawTarget(endpoint: string): { host: string; port: number } | { path: string } {
  const tcp = /^tcp:\/\/(.+):(\d+)$/.exec(endpoint);
  if (tcp !== null) return { host: tcp[1] as string, port: Number(tcp[2]) };
  if (endpoint.startsWith('ipc://@')) return { path: `\0${endpoint.slice('ipc://@'.length)}` };
  return { path: endpointPath(endpoint) as string };
}

/** Writes `bytes` on a fresh connection, then closes it; resolves when it is closed. */
function rawWrite(endpoint: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(rawTarget(endpoint) as never);
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 1000);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('connect', () => socket.end(bytes));
  });
}

/** ZMTP 3 signature: 0xff, 8 padding bytes, 0x7f. */
const SIGNATURE = Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f]);

const scenario: Scenario = {
  name: 'malformed-upstream',
  checks: 'raw bytes and bad subscriptions: peer primary stays up, keeps beating',
  sections: '2.3, 5',
  async run(ctx) {
    const endpoint = await ctx.endpoint();
    const peer = await ctx.peer({ endpoint });
    const held = await peerPrimary(peer);

    // Side by side: a connection is closed by the peer, or by the kit after 1 s (a ZeroMQ
    // listener may wait for the rest of a handshake that never comes).
    const writes = Array.from({ length: 10 }, (_, i) => [
      rawWrite(endpoint, randomBytes(64 + i * 100)),
      rawWrite(endpoint, Buffer.concat([SIGNATURE, randomBytes(200)])),
    ]).flat();
    await Promise.all(writes);
    const raw = writes.length;
    const xsub = new zmq.XSubscriber({ linger: 0 });
    ctx.onCleanup(() => xsub.close());
    xsub.connect(endpoint);
    const subscribe = (topic: Buffer): Promise<void> => xsub.send(Buffer.concat([Buffer.from([1]), topic]));
    const bad = [
      Buffer.alloc(2000, 0x70), // 2000 bytes: above the 1024 any XPUB of this protocol accepts
      Buffer.from('presence.'),
      Buffer.from('presence.x.id'),
      Buffer.from('presence.99999999999.id'),
      Buffer.from('presence.-1.id'),
      Buffer.from('presence.1.'),
      Buffer.from(`presence.1.${'x'.repeat(300)}`),
      Buffer.concat([Buffer.from('presence.1.'), Buffer.from([0xff, 0xfe])]),
      Buffer.from('probe.'),
      Buffer.from('probe.kit.'),
      Buffer.from('probe.kit.12ab'),
      Buffer.from(`probe.kit.${'9'.repeat(16)}`),
    ];
    for (let round = 0; round < 5; round++) for (const topic of bad) await subscribe(topic);

    // Still alive, still primary, still publishing to a subscriber that connects now.
    const listener = ctx.listener(endpoint);
    await listener.next((h) => h.message.instanceId === peer.id && h.message.topic === 'instance.heartbeat', 2 * CHANGE_BOUND, `a heartbeat from ${peer.id} after the garbage`);
    check(peer.alive, `peer exited: ${JSON.stringify(peer.exitInfo)}`);
    const after = peer.events.filter((e) => e.event === 'role' && e.at > held.at);
    check(after.length === 0, `garbage changed the peer's role: ${JSON.stringify(after)}`);
    ctx.note(`${raw} raw connections, ${5 * bad.length} bad subscriptions`);
  },
};
export default scenario;
