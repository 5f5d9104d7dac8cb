/**
 * The shared state file (issue 16 item 2): epochs survive restarts across implementations that
 * share a work directory. The peer takes a term above an epoch it heard (1000 + k) and stops; a
 * library node started fresh on the same workdir, alone, must take a higher epoch; then the
 * library node stops and a fresh peer on that workdir must go higher again: the peer reads and
 * writes the state file as PROTOCOL.md 6.6 specifies.
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { CHANGE_BOUND, check, epochOf, libraryPrimary, peerFollows, peerPrimary, type Scenario } from '../scenario.js';

const SEEN = 1000;

const scenario: Scenario = {
  name: 'state-file',
  checks: 'peer and library on one workdir: epochs grow across restarts',
  sections: '6.6',
  async run(ctx) {
    const workdir = ctx.dir();
    const endpoint = await ctx.endpoint();
    const squatter = await ctx.squatter(endpoint);
    const peer = await ctx.peer({ endpoint, workdir });
    await squatter.heartbeatUntil({ instanceId: 'kit-seed', epoch: SEEN }, peerFollows(peer, 'kit-seed', 10_000), 10_000);
    const t0 = hostNow();
    squatter.close();
    const peerTerm = await peerPrimary(peer, CHANGE_BOUND, t0);
    check(epochOf(peerTerm) > SEEN, `peer took epoch ${String(peerTerm.epoch)} after hearing ${SEEN}`);
    const stopped = await peer.stop();
    check(stopped === undefined, stopped ?? '');

    // Alone on a fresh endpoint: what it knows of earlier epochs comes from the workdir only.
    const ep2 = await ctx.endpoint();
    const lib = await ctx.library({ endpoint: ep2, workdir });
    const libTerm = await libraryPrimary(lib);
    check(epochOf(libTerm) > epochOf(peerTerm), `a fresh library node on the peer's workdir took epoch ${epochOf(libTerm)} after the peer's ${epochOf(peerTerm)}`);
    await lib.stop();

    const ep3 = await ctx.endpoint();
    const peer2 = await ctx.peer({ endpoint: ep3, workdir });
    const peer2Term = await peerPrimary(peer2);
    check(epochOf(peer2Term) > epochOf(libTerm), `a fresh peer on the library's workdir took epoch ${String(peer2Term.epoch)} after the library's ${epochOf(libTerm)}`);
    ctx.note(`epochs ${epochOf(peerTerm)} (peer) -> ${epochOf(libTerm)} (library) -> ${epochOf(peer2Term)} (peer)`);
  },
};
export default scenario;
