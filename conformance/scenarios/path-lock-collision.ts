/**
 * The path lock between implementations, on `ipc:///PATH`: while a library primary holds the
 * endpoint, a peer that starts beside it (and tries to bind at once) must stay secondary and
 * follow it; and the reverse, a library node beside a peer primary (PROTOCOL.md 2.2). A node
 * that bound the path without the lock would unlink the holder's socket file and become a second
 * primary. The two directions run side by side, on two endpoints.
 *
 * @module
 */
import { check, libraryFollows, libraryPrimary, peerFollows, peerPrimary, type Scenario, type ScenarioContext } from '../scenario.js';

/** How long each side is watched for a wrong promotion after it followed the holder. */
const WATCH_MS = 1500;
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function peerBesideLibrary(ctx: ScenarioContext): Promise<void> {
  const endpoint = await ctx.endpoint();
  const lib = await ctx.library({ endpoint });
  const held = await libraryPrimary(lib);
  const peer = await ctx.peer({ endpoint });
  await peerFollows(peer, lib.id);
  // A negative: nothing to wait for but the time in which it would have happened.
  await pause(WATCH_MS);
  const terms = peer.events.filter((e) => e.event === 'role' && e.role === 'primary');
  check(terms.length === 0, `peer became primary beside the library primary: ${JSON.stringify(terms)}`);
  check(lib.alive && !lib.events.some((e) => e.type === 'roleChanged' && e.to !== 'primary' && e.at > held.at), 'the library primary lost its role');
}

async function libraryBesidePeer(ctx: ScenarioContext): Promise<void> {
  const endpoint = await ctx.endpoint();
  const peer = await ctx.peer({ endpoint });
  const held = await peerPrimary(peer);
  const lib = await ctx.library({ endpoint });
  await libraryFollows(lib, peer.id);
  await pause(WATCH_MS);
  const terms = lib.events.filter((e) => e.type === 'roleChanged' && e.to === 'primary');
  check(terms.length === 0, `library node became primary beside the peer primary: ${JSON.stringify(terms)}`);
  check(peer.alive && !peer.events.some((e) => e.event === 'role' && e.role !== 'primary' && e.at > held.at), 'the peer primary lost its role');
}

const scenario: Scenario = {
  name: 'path-lock-collision',
  checks: 'ipc:///PATH held by one side: the other never binds it, follows',
  sections: '2.2',
  transports: ['ipc-path'],
  async run(ctx) {
    await Promise.all([peerBesideLibrary(ctx), libraryBesidePeer(ctx)]);
  },
};
export default scenario;
