/**
 * Presence: a peer connected to a library primary subscribes to `presence.<priority>.<id>`, so
 * the primary's heartbeats list it in `members` with its priority (PROTOCOL.md 5). The reverse
 * (a peer primary listing its secondaries) is not checked: a peer MAY bind a plain PUB.
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { CHANGE_BOUND, libraryPrimary, peerFollows, type Scenario } from '../scenario.js';

const PEER_PRIORITY = 7;

const scenario: Scenario = {
  name: 'presence',
  checks: 'library primary lists the peer in members, with its priority',
  sections: '5',
  async run(ctx) {
    const endpoint = await ctx.endpoint();
    const lib = await ctx.library({ endpoint, priority: 3 });
    await libraryPrimary(lib);
    const listener = ctx.listener(endpoint);
    const peer = await ctx.peer({ endpoint, priority: PEER_PRIORITY });
    await peerFollows(peer, lib.id);
    const listed = (m: ReadonlyArray<readonly [string, number]> | undefined): boolean =>
      (m ?? []).some(([id, priority]) => id === peer.id && priority === PEER_PRIORITY);
    const t0 = hostNow();
    const heard = await listener.next((h) => h.message.instanceId === lib.id && listed(h.message.members), CHANGE_BOUND, `a heartbeat of ${lib.id} listing [${peer.id}, ${PEER_PRIORITY}]`);
    ctx.note(`listed ${(heard.at - t0).toFixed(0)} ms after the peer followed`);
  },
};
export default scenario;
