/**
 * Malformed input: the kit holds the endpoint and publishes every kind of invalid message
 * (PROTOCOL.md 4.3: wrong frame counts, unknown topics, oversized frames, bytes that are not
 * msgpack, wrong shapes and types, another version), then a valid heartbeat from a new sender.
 * The peer must drop the garbage, neither exit nor promote, and follow the valid sender.
 *
 * @module
 */
import { Packr } from 'msgpackr';
import { CHANGE_BOUND, check, epochOf, peerFollows, type Scenario } from '../scenario.js';

const ROUNDS = 10;

const scenario: Scenario = {
  name: 'malformed-input',
  checks: 'garbage from the primary: peer stays up, never promotes, follows the next valid one',
  sections: '3.1, 4.3',
  async run(ctx) {
    const endpoint = await ctx.endpoint();
    const squatter = await ctx.squatter(endpoint);
    const peer = await ctx.peer({ endpoint, heartbeatTimeout: 10_000, heartbeatInterval: 2000 });
    await squatter.heartbeatUntil({ instanceId: 'kit-valid', epoch: 7 }, peerFollows(peer, 'kit-valid', 10_000), 10_000);

    const packr = new Packr({ useRecords: false });
    const topic = Buffer.from('instance.heartbeat');
    const valid = packr.pack({ version: 1, instanceId: 'kit-x', epoch: 9, seq: 1, sentAt: 1, pid: 1, host: 'h' });
    const garbage: Buffer[][] = [
      [topic],
      [topic, valid, Buffer.from('x')],
      [Buffer.from('instance.nonsense'), valid],
      [topic, Buffer.alloc(5000, 0x41)],
      [Buffer.alloc(70, 0x69), valid],
      [topic, Buffer.from([0xc1, 0xff, 0x00])],
      [topic, Buffer.concat([valid, Buffer.from([0x01])])],
      [topic, packr.pack([1, 2, 3])],
      [topic, packr.pack({ version: 1, instanceId: 5, epoch: 'x' })],
      [topic, packr.pack({ version: 2, instanceId: 'kit-v2', epoch: 99, seq: 1, sentAt: 1, pid: 1, host: 'h' })],
      [topic, packr.pack({ version: 1, instanceId: 'kit-big', epoch: 2 ** 53, seq: 1, sentAt: 1, pid: 1, host: 'h' })],
      [topic, packr.pack({ version: 1, instanceId: 'kit-nil', epoch: 9, seq: 1, sentAt: 1, pid: 1, host: 'h', priority: null })],
      [Buffer.from('instance.promoted'), packr.pack({ version: 1, instanceId: 'kit-neg', epoch: -1, seq: 1, sentAt: 1, pid: 1, host: 'h' })],
      [Buffer.from('instance.shutdown'), Buffer.from('not a payload')],
      [Buffer.from('instance.shutdown'), packr.pack({ version: 1, instanceId: '', epoch: 100, seq: 1, sentAt: 1, pid: 1, host: 'h' })],
    ];
    for (let r = 0; r < ROUNDS; r++) for (const frames of garbage) await squatter.publishRaw(frames);
    // One pipe keeps order: once the peer follows this sender, it has read all of the above.
    const after = await squatter.heartbeatUntil({ instanceId: 'kit-after', epoch: 8 }, peerFollows(peer, 'kit-after', CHANGE_BOUND), CHANGE_BOUND);
    check(epochOf(after) === 8, `peer's "following" line for kit-after says epoch ${String(after.epoch)}, sent 8`);
    check(peer.alive, `peer exited: ${JSON.stringify(peer.exitInfo)}`);
    const wrong = peer.events.filter((e) => (e.event === 'role' && e.role === 'primary') || (e.event === 'following' && e.id !== 'kit-valid' && e.id !== 'kit-after'));
    check(wrong.length === 0, `garbage changed the peer's state: ${JSON.stringify(wrong)}`);
    ctx.note(`${ROUNDS * garbage.length} invalid messages dropped`);
  },
};
export default scenario;
