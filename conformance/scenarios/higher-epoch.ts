/**
 * A higher epoch learnt from the wire is honoured on both sides: the kit, bound to the endpoint,
 * publishes heartbeats of epoch 1000 from a made-up node; when it vanishes (no shutdown), the
 * peer takes over with an epoch above 1000; then the peer crashes and a library node that
 * followed it takes over above the peer's epoch (PROTOCOL.md 6.1 item 3, 6.2 item 1).
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { CHANGE_BOUND, check, epochOf, libraryFollows, libraryPrimary, peerFollows, peerPrimary, rankedMembers, type Scenario } from '../scenario.js';

const GHOST_EPOCH = 1000;

const scenario: Scenario = {
  name: 'higher-epoch',
  checks: `epoch ${GHOST_EPOCH} heard from the wire: peer then library promote above it`,
  sections: '6.1, 6.2',
  async run(ctx) {
    const endpoint = await ctx.endpoint();
    const squatter = await ctx.squatter(endpoint);
    const [peer, lib] = await Promise.all([ctx.peer({ endpoint }), ctx.library({ endpoint, priority: 1000 })]);
    const ghost = { instanceId: 'kit-ghost', epoch: GHOST_EPOCH, members: rankedMembers(peer.id, lib.id) };
    await squatter.heartbeatUntil(ghost, Promise.all([peerFollows(peer, ghost.instanceId, 10_000), libraryFollows(lib, ghost.instanceId, 10_000)]), 10_000);
    // The ghost's members list ranks the peer first and the library node 31st: the library
    // node waits its stagger, the peer goes first.
    const t0 = hostNow();
    squatter.close();
    const peerTerm = await peerPrimary(peer, CHANGE_BOUND, t0);
    check(epochOf(peerTerm) > GHOST_EPOCH, `peer took epoch ${String(peerTerm.epoch)} after hearing ${GHOST_EPOCH}`);
    await libraryFollows(lib, peer.id, CHANGE_BOUND, t0);
    const t1 = hostNow();
    await peer.crash();
    const libTerm = await libraryPrimary(lib, CHANGE_BOUND, t1);
    check(epochOf(libTerm) > epochOf(peerTerm), `library took epoch ${epochOf(libTerm)} after the peer's ${epochOf(peerTerm)}`);
    ctx.note(`ghost ${GHOST_EPOCH} -> peer ${epochOf(peerTerm)} -> library ${epochOf(libTerm)}`);
  },
};
export default scenario;
