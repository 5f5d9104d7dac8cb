/**
 * The welcome (issue 16 item 1): followers connected before a takeover learn the new primary
 * within {@link WELCOME_BOUND} ms of its promotion, whatever its heartbeatInterval. Every node
 * runs with a 30 s interval, so one regular heartbeat cannot pass for the welcome. The old
 * primary is the kit (a made-up node heartbeating every 20 ms, so both followers know it at
 * once); it sends `instance.shutdown` and unbinds; the successor is chosen without a race: the
 * kit's members list ranks it first (and, towards the peer, the follower 32nd, see
 * rankedMembers), and a library follower runs with failover disabled.
 *
 * Then a newcomer connects to the new primary and must learn it within the same bound of its
 * `ready`. That second check is what makes the scenario deterministic: without a welcome, the
 * followers of a takeover still receive `instance.promoted` when they happen to reconnect
 * before it is published (a race the welcome removes), but a newcomer hears nothing for 30 s.
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { CHANGE_BOUND, check, libraryFollows, libraryPrimary, peerFollows, peerPrimary, rankedMembers, type Scenario } from '../scenario.js';

/** The bound on the follower's lag; the issue asks for 50 ms, the kit allows a loaded 2-core host. */
export const WELCOME_BOUND = 250;
const INTERVAL = 30_000;
/** How long the kit waits for the follow at all (to report the lag when it is over the bound). */
const LAG_WAIT = 1500;

export function welcome(successor: 'peer' | 'library'): Scenario {
  return {
    name: successor === 'peer' ? 'welcome-from-peer' : 'welcome-to-peer',
    checks:
      successor === 'peer'
        ? `library follower learns a new peer primary within ${WELCOME_BOUND} ms`
        : `peer follower learns a new library primary within ${WELCOME_BOUND} ms`,
    sections: '3.2 welcome (issue 16 item 1)',
    async run(ctx) {
      const endpoint = await ctx.endpoint();
      const squatter = await ctx.squatter(endpoint);
      const timing = { heartbeatInterval: INTERVAL, heartbeatTimeout: 3 * INTERVAL };
      const [peer, lib] = await Promise.all([ctx.peer({ endpoint, ...timing }), ctx.library({ endpoint, ...timing, enabled: successor === 'library' })]);
      const ghost = {
        instanceId: 'kit-old-primary',
        epoch: 3,
        members: successor === 'peer' ? rankedMembers(peer.id, lib.id) : rankedMembers(lib.id, peer.id),
      };
      await squatter.heartbeatUntil(ghost, Promise.all([peerFollows(peer, ghost.instanceId, 10_000), libraryFollows(lib, ghost.instanceId, 10_000)]), 10_000);
      await squatter.publish('instance.shutdown', ghost);
      const t0 = hostNow();
      squatter.close();
      if (successor === 'peer') {
        const promoted = await peerPrimary(peer, CHANGE_BOUND, t0);
        const followed = await libraryFollows(lib, peer.id, LAG_WAIT, t0).catch(() => undefined);
        check(followed !== undefined, `the library follower did not learn the peer primary within ${LAG_WAIT} ms of its promotion`);
        const lag = followed.at - promoted.at;
        ctx.note(`follower lag ${lag.toFixed(1)} ms`);
        check(lag <= WELCOME_BOUND, `the library follower learnt the peer primary ${lag.toFixed(1)} ms after its promotion`);
        const joiner = await ctx.library({ endpoint, ...timing, enabled: false });
        const ready = joiner.events.find((e) => e.type === 'ready')?.at ?? hostNow();
        const joined = await libraryFollows(joiner, peer.id, LAG_WAIT).catch(() => undefined);
        check(joined !== undefined, `a library node that connected to the peer primary did not learn it within ${LAG_WAIT} ms`);
        const joinLag = joined.at - ready;
        ctx.note(`newcomer lag ${joinLag.toFixed(1)} ms`);
        check(joinLag <= WELCOME_BOUND, `a library node that connected to the peer primary learnt it ${joinLag.toFixed(1)} ms after it was ready`);
      } else {
        const promoted = await libraryPrimary(lib, CHANGE_BOUND, t0);
        const tookIt = peer.events.find((e) => e.event === 'role' && e.role === 'primary');
        check(tookIt === undefined, 'the peer took over although the old primary ranked it last (successor stagger, PROTOCOL 6.3)');
        const followed = await peerFollows(peer, lib.id, LAG_WAIT, t0).catch(() => undefined);
        check(followed !== undefined, `the peer did not learn the library primary within ${LAG_WAIT} ms of its promotion`);
        const lag = followed.at - promoted.at;
        ctx.note(`follower lag ${lag.toFixed(1)} ms`);
        check(lag <= WELCOME_BOUND, `the peer learnt the library primary ${lag.toFixed(1)} ms after its promotion`);
        const joiner = await ctx.peer({ endpoint, ...timing });
        const ready = joiner.events.find((e) => e.event === 'ready')?.at ?? hostNow();
        const joined = await peerFollows(joiner, lib.id, LAG_WAIT).catch(() => undefined);
        check(joined !== undefined, `a peer that connected to the library primary did not learn it within ${LAG_WAIT} ms`);
        const joinLag = joined.at - ready;
        ctx.note(`newcomer lag ${joinLag.toFixed(1)} ms`);
        check(joinLag <= WELCOME_BOUND, `a peer that connected to the library primary learnt it ${joinLag.toFixed(1)} ms after its "ready" line`);
      }
    },
  };
}
