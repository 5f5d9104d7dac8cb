/**
 * The path lock between implementations, on `ipc:///PATH`: while a library primary holds the
 * endpoint, a peer that starts beside it (and tries to bind at once, then again after its
 * silence timeout) must stay secondary and follow it; and the reverse, a library node beside a
 * peer primary (PROTOCOL.md 2.2). A node that bound the path without the lock would unlink the
 * holder's socket file and become a second primary.
 *
 * @module
 */
import { check, libraryFollows, libraryPrimary, peerFollows, peerPrimary, type Scenario } from '../scenario.js';

/** How long each side is watched for a wrong promotion: past two silence timeouts (1000 ms). */
const WATCH_MS = 2500;

const scenario: Scenario = {
  name: 'path-lock-collision',
  checks: 'ipc:///PATH held by one side: the other never binds it, follows',
  sections: '2.2',
  transports: ['ipc-path'],
  async run(ctx) {
    const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

    const ep1 = await ctx.endpoint();
    const lib = await ctx.library({ endpoint: ep1 });
    await libraryPrimary(lib);
    const peer = await ctx.peer({ endpoint: ep1 });
    await peerFollows(peer, lib.id);
    // A negative: nothing to wait for but the time in which it would have happened.
    await pause(WATCH_MS);
    const peerTerms = peer.events.filter((e) => e.event === 'role' && e.role === 'primary');
    check(peerTerms.length === 0, `peer became primary beside the library primary: ${JSON.stringify(peerTerms)}`);
    check(lib.alive && !lib.events.some((e) => e.type === 'roleChanged' && e.to === 'secondary'), 'the library primary lost its role');

    const ep2 = await ctx.endpoint();
    const peer2 = await ctx.peer({ endpoint: ep2 });
    await peerPrimary(peer2);
    const lib2 = await ctx.library({ endpoint: ep2 });
    await libraryFollows(lib2, peer2.id);
    await pause(WATCH_MS);
    const libTerms = lib2.events.filter((e) => e.type === 'roleChanged' && e.to === 'primary');
    check(libTerms.length === 0, `library node became primary beside the peer primary: ${JSON.stringify(libTerms)}`);
    check(peer2.alive && !peer2.events.some((e) => e.event === 'role' && e.role === 'secondary'), 'the peer primary lost its role');
  },
};
export default scenario;
