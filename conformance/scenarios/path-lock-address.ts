/**
 * The path lock's exact address (PROTOCOL.md 2.2): the abstract unix name
 * `"\0failover-watch-lock-"` + the first 40 hex digits of SHA-256(PATH), that many bytes and no
 * more. The kit holds that exact name itself: the peer must not take the endpoint; the kit lets
 * go: the peer must take it (within its silence retries) and then hold the exact name, which the
 * kit then fails to bind. An implementation whose lock lives at another address (Node 20's `net`
 * pads abstract names with NUL bytes to 108) excludes only itself, not other implementations.
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { check, peerPrimary, type Scenario } from '../scenario.js';
import { endpointPath, holdExactLock } from '../wire.js';

/** Past the peer's bind at start and two silence timeouts (1000 ms). */
const WATCH_MS = 2500;

const scenario: Scenario = {
  name: 'path-lock-address',
  checks: 'the lock is the exact abstract name of PROTOCOL 2.2, both ways',
  sections: '2.2',
  transports: ['ipc-path'],
  async run(ctx) {
    const endpoint = await ctx.endpoint();
    const path = endpointPath(endpoint) as string;
    const held = await holdExactLock(path);
    check(held !== 'in-use', 'the kit could not take the lock of a fresh path');
    ctx.onCleanup(() => held.release());
    const peer = await ctx.peer({ endpoint });
    await new Promise((r) => setTimeout(r, WATCH_MS));
    const early = peer.events.filter((e) => e.event === 'role' && e.role === 'primary');
    check(early.length === 0, `peer took ${endpoint} while the kit held its lock's exact address`);

    const t0 = hostNow();
    held.release();
    const term = await peerPrimary(peer, 5000, t0);
    ctx.note(`peer took the endpoint ${(term.at - t0).toFixed(0)} ms after the kit let the lock go`);
    const again = await holdExactLock(path);
    if (again !== 'in-use') again.release();
    check(again === 'in-use', "the kit could bind the lock's exact address while the peer was primary");
  },
};
export default scenario;
