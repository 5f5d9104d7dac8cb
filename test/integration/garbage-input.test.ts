/**
 * Garbage on the wire, from a real ZeroMQ publisher holding the endpoint, to a secondary in its
 * own process: every bad message is dropped and counted; none throws, promotes or demotes.
 */
import { Packr } from 'msgpackr';
import * as zmq from 'zeromq';
import { afterEach, expect, it } from 'vitest';
import { Cluster, tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { encode } from '../../src/protocol/codec.js';

let cluster: Cluster | undefined;
let pub: zmq.Publisher | undefined;
let workdir: ReturnType<typeof tempWorkdir> | undefined;

afterEach(async () => {
  pub?.close();
  await cluster?.stopAll();
  workdir?.cleanup();
});

const packr = new Packr({ useRecords: false });
const heartbeat = (epoch: number, seq: number) =>
  encode('instance.heartbeat', { version: 1, instanceId: 'fake', epoch, seq, sentAt: Date.now(), pid: 4242, host: 'test' });

it('drops and counts every kind of invalid message without promoting, demoting or crashing', async () => {
  cluster = new Cluster();
  workdir = tempWorkdir();
  const endpoint = uniqueIpc('fw-garbage');
  pub = new zmq.Publisher();
  await pub.bind(endpoint);
  const s1 = cluster.spawn({
    endpoint,
    instanceId: 's1',
    workdir: workdir.path,
    role: 'secondary',
    heartbeatInterval: 50,
    heartbeatTimeout: 5000,
    enabled: true,
  });
  await s1.waitFor((e) => e.type === 'ready', 20_000, 'ready');

  // Publish valid heartbeats until the secondary is connected and follows the fake primary.
  const following = s1.waitFor((e) => e.type === 'primaryChanged' && e.epoch === 7, 10_000, 'follow');
  let seq = 0;
  let connected = false;
  void following.then(() => (connected = true), () => undefined);
  for (let i = 0; i < 500 && !connected; i++) {
    await pub.send(heartbeat(7, ++seq));
    await new Promise((r) => setTimeout(r, 20));
  }
  await following;

  const valid = heartbeat(7, 1)[1];
  const garbage: Buffer[][] = [
    [Buffer.from('instance.heartbeat')], // one frame
    [Buffer.from('instance.heartbeat'), valid, Buffer.from('x')], // three frames
    [Buffer.from('instance.nonsense'), valid], // unknown topic
    [Buffer.from('instance.heartbeat'), Buffer.alloc(5000, 0x41)], // oversized
    [Buffer.from('instance.heartbeat'), Buffer.from([0xc1, 0xff, 0x00])], // not msgpack
    [Buffer.from('instance.heartbeat'), packr.pack([1, 2, 3])], // an array
    [Buffer.from('instance.heartbeat'), packr.pack({ version: 1, instanceId: 5, epoch: 'x' })], // wrong types
    [Buffer.from('instance.heartbeat'), packr.pack({ version: 2, instanceId: 'v2', epoch: 99, seq: 1, sentAt: 1, pid: 1, host: 'h' })],
    [Buffer.from('instance.shutdown'), Buffer.from('not a payload')], // a broken shutdown
    [Buffer.from('instance.promoted'), packr.pack({ version: 1, instanceId: 'x', epoch: -1, seq: 1, sentAt: 1, pid: 1, host: 'h' })],
    [Buffer.from('instance.shutdown'), packr.pack({ version: 1, instanceId: '', epoch: 100, seq: 1, sentAt: 1, pid: 1, host: 'h' })],
  ];
  const rounds = 20;
  for (let r = 0; r < rounds; r++) {
    for (const frames of garbage) await pub.send(frames);
  }
  // A valid heartbeat with a new epoch after the garbage: once the secondary reports it, every
  // earlier message on this one pipe has been handled.
  const caughtUp = s1.next((e) => e.type === 'primaryChanged' && e.epoch === 8, 10_000, 'catch up');
  await pub.send(heartbeat(8, ++seq));
  await caughtUp;

  s1.send({ cmd: 'status' });
  const { status } = (await s1.next((e) => e.type === 'status', 5000, 'status')) as unknown as {
    status: { role: string; primarySuspected: boolean; primary: { instanceId: string }; dropped: Record<string, number> };
  };
  expect(status.role).toBe('secondary');
  expect(status.primarySuspected).toBe(false);
  expect(status.primary.instanceId).toBe('fake');
  expect(status.dropped).toEqual({
    total: garbage.length * rounds,
    frames: 2 * rounds,
    topic: 1 * rounds,
    oversize: 1 * rounds,
    msgpack: 2 * rounds,
    shape: 4 * rounds,
    version: 1 * rounds,
    metadata: 0,
  });
  expect(s1.events.filter((e) => e.type === 'promote' || e.type === 'primaryLost')).toEqual([]);
  expect(s1.alive).toBe(true);
});
