/**
 * Liveness probe: a new `probe.<id>.<nonce>` subscription to a peer primary is answered at once
 * with an extra `instance.heartbeat` (PROTOCOL.md 5, a MUST for a primary that binds XPUB). The
 * peer runs with a 1 s heartbeat interval so that the answer cannot be a regular heartbeat.
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { CHANGE_BOUND, check, peerPrimary, type Scenario } from '../scenario.js';

const INTERVAL = 1000;
/** Bound on the answer (the next regular heartbeat is INTERVAL away). */
const ANSWER_BOUND = 300;

const scenario: Scenario = {
  name: 'probe',
  checks: `peer primary answers a probe subscription within ${ANSWER_BOUND} ms`,
  sections: '5',
  async run(ctx) {
    const endpoint = await ctx.endpoint();
    const peer = await ctx.peer({ endpoint, heartbeatInterval: INTERVAL, heartbeatTimeout: 3 * INTERVAL });
    await peerPrimary(peer);
    const listener = ctx.listener(endpoint);
    // Connected once it hears the peer. The first heartbeat heard may be a welcome (issue 16
    // item 1), off the regular cadence; right after the second one, the next regular heartbeat
    // is a whole interval away.
    await listener.next((h) => h.message.instanceId === peer.id, INTERVAL + CHANGE_BOUND, `a heartbeat from ${peer.id}`);
    const regular = await listener.next((h) => h.message.instanceId === peer.id, INTERVAL + CHANGE_BOUND, `a second heartbeat from ${peer.id}`);
    const t0 = hostNow();
    check(t0 - regular.at < INTERVAL - ANSWER_BOUND, 'the kit was too slow to probe between two heartbeats');
    const answer = listener.next((h) => h.message.instanceId === peer.id && h.message.topic === 'instance.heartbeat', ANSWER_BOUND, `an answer to the probe from ${peer.id}`);
    listener.subscribe('probe.kit-conformance.1');
    const heard = await answer;
    listener.unsubscribe('probe.kit-conformance.1');
    ctx.note(`answered in ${(heard.at - t0).toFixed(1)} ms`);
  },
};
export default scenario;
