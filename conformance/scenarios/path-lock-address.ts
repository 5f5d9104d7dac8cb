/**
 * The path lock's address (PROTOCOL.md 2.2): a unix stream socket bound to the abstract address
 * that fills the 108 bytes of `sun_path` (a NUL, `failover-watch-lock-`, 40 hex digits of
 * SHA-256(PATH), hyphens). The kit, written from the document, holds that address itself: the
 * peer must not take the endpoint; the kit lets go: the peer must take it (within its silence
 * retries), and then hold the address, which the kit then fails to bind. A lock at any other
 * address excludes only nodes of the same implementation.
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { check, peerPrimary, type Scenario } from '../scenario.js';
import { endpointPath, holdLock } from '../wire.js';

/** Past the peer's bind at start and two silence timeouts (1000 ms). */
const WATCH_MS = 2500;

const scenario: Scenario = {
  name: 'path-lock-address',
  checks: 'the lock is the 108-byte address of PROTOCOL 2.2, both ways',
  sections: '2.2',
  transports: ['ipc-path'],
  async run(ctx) {
    const endpoint = await ctx.endpoint();
    const path = endpointPath(endpoint) as string;
    const held = await holdLock(path);
    check(held !== 'in-use', 'the kit could not take the lock of a fresh path');
    ctx.onCleanup(() => held.release());
    const peer = await ctx.peer({ endpoint });
    // A negative: nothing to wait for but the time in which it would have happened.
    await new Promise((r) => setTimeout(r, WATCH_MS));
    const early = peer.events.filter((e) => e.event === 'role' && e.role === 'primary');
    check(early.length === 0, `peer took ${endpoint} while the kit held its lock's address`);

    const t0 = hostNow();
    held.release();
    const term = await peerPrimary(peer, 5000, t0);
    ctx.note(`peer took the endpoint ${(term.at - t0).toFixed(0)} ms after the kit let the lock go`);
    const again = await holdLock(path);
    if (again !== 'in-use') again.release();
    check(again === 'in-use', "the kit could bind the lock's address while the peer was primary");
  },
};
export default scenario;
