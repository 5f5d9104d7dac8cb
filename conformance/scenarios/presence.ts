/**
 * Presence: a peer connected to a library primary subscribes to `presence.<priority>.<id>`, so
 * the primary's heartbeats list it in `members` with its priority (PROTOCOL.md 5). The reverse
 * (a peer primary listing the library node) is a MAY (a peer may bind a plain PUB) and is only
 * noted.
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { CHANGE_BOUND, libraryFollows, libraryPrimary, peerFollows, peerPrimary, type Scenario } from '../scenario.js';

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

    // The reverse direction, noted only: the library primary stops, the peer takes over.
    const t1 = hostNow();
    const lib2 = await ctx.library({ endpoint, priority: 4, enabled: false });
    await libraryFollows(lib2, lib.id);
    await lib.stop();
    await peerPrimary(peer, CHANGE_BOUND, t1);
    const lists = await listener
      .next((h) => h.message.instanceId === peer.id && (h.message.members ?? []).some(([id]) => id === lib2.id), 2000, 'members')
      .then(
        () => true,
        () => false,
      );
    ctx.note(`peer primary lists connected secondaries (MAY): ${lists ? 'yes' : 'no'}`);
  },
};
export default scenario;
