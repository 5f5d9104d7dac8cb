/**
 * The four takeovers of a two-node mixed cluster, one scenario each: the peer primary replaced
 * by a library node (graceful stop, crash) and the reverse. Each checks that the successor takes
 * the role, with an epoch above its predecessor's, and that a graceful stop put
 * `instance.shutdown` on the wire (PROTOCOL.md 3.2, 6.2, 6.3).
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { CHANGE_BOUND, check, epochOf, libraryFollows, libraryPrimary, peerFollows, peerPrimary, type Scenario, type ScenarioContext } from '../scenario.js';

type Direction = 'peer-to-library' | 'library-to-peer';
type How = 'graceful' | 'crash';

export function takeover(direction: Direction, how: How): Scenario {
  return {
    name: `${how}-${direction}`,
    checks:
      direction === 'peer-to-library'
        ? `peer primary ${how === 'graceful' ? 'stopped (SIGTERM)' : 'killed (SIGKILL)'}: library takes over, higher epoch`
        : `library primary ${how === 'graceful' ? 'stopped' : 'killed (SIGKILL)'}: peer takes over, higher epoch`,
    sections: how === 'graceful' ? '3.2, 6.2, 6.3 shutdown' : '6.2, 6.3 disconnect',
    run: (ctx) => (direction === 'peer-to-library' ? peerToLibrary(ctx, how) : libraryToPeer(ctx, how)),
  };
}

async function peerToLibrary(ctx: ScenarioContext, how: How): Promise<void> {
  const endpoint = await ctx.endpoint();
  const peer = await ctx.peer({ endpoint });
  const promoted = await peerPrimary(peer);
  const before = epochOf(promoted);
  check(Number.isInteger(before) && before >= 1, `peer's "role" line has no valid epoch: ${JSON.stringify(promoted)}`);
  const lib = await ctx.library({ endpoint });
  await libraryFollows(lib, peer.id);
  const listener = ctx.listener(endpoint);
  // The listener is connected once it hears the peer's heartbeats (every 200 ms).
  await listener.next((h) => h.message.instanceId === peer.id, CHANGE_BOUND, `a heartbeat from ${peer.id}`);
  const farewell = listener.next((h) => h.message.topic === 'instance.shutdown' && h.message.instanceId === peer.id, CHANGE_BOUND, `instance.shutdown from ${peer.id}`);
  farewell.catch(() => undefined);
  const t0 = hostNow();
  if (how === 'graceful') {
    const problem = await peer.stop();
    check(problem === undefined, problem ?? '');
  } else {
    await peer.crash();
  }
  const taken = await libraryPrimary(lib, CHANGE_BOUND, t0);
  check(epochOf(taken) > before, `library took epoch ${epochOf(taken)} after the peer's ${before}: epochs must grow`);
  ctx.note(`peer epoch ${before} -> library epoch ${epochOf(taken)}, takeover ${(taken.at - t0).toFixed(1)} ms after the ${how === 'graceful' ? 'SIGTERM' : 'SIGKILL'}`);
  if (how === 'graceful') {
    const heard = await farewell;
    check(heard.message.epoch === before, `the peer's instance.shutdown carries epoch ${heard.message.epoch}, its term was ${before}`);
  }
}

async function libraryToPeer(ctx: ScenarioContext, how: How): Promise<void> {
  const endpoint = await ctx.endpoint();
  const lib = await ctx.library({ endpoint });
  const promoted = await libraryPrimary(lib);
  const before = epochOf(promoted);
  const peer = await ctx.peer({ endpoint });
  const follows = await peerFollows(peer, lib.id);
  check(epochOf(follows) === before, `peer's "following" line says epoch ${String(follows.epoch)}, the library primary's is ${before}`);
  const t0 = hostNow();
  if (how === 'graceful') await lib.stop();
  else lib.kill('SIGKILL');
  const taken = await peerPrimary(peer, CHANGE_BOUND, t0);
  check(epochOf(taken) > before, `peer took epoch ${String(taken.epoch)} after the library's ${before}: epochs must grow`);
  ctx.note(`library epoch ${before} -> peer epoch ${epochOf(taken)}, takeover ${(taken.at - t0).toFixed(1)} ms after the ${how === 'graceful' ? 'stop' : 'SIGKILL'}`);
}
