/**
 * A lower epoch does not lower what a node knows: the peer follows a made-up primary of epoch 50,
 * then another of epoch 7 (a secondary follows whoever publishes, even with a lower epoch); when
 * that one vanishes, the peer takes an epoch above 50, not 8 (PROTOCOL.md 6.1 item 3, 6.3).
 *
 * @module
 */
import { hostNow } from '../../harness/child-runtime.js';
import { CHANGE_BOUND, check, epochOf, peerFollows, peerPrimary, type Scenario } from '../scenario.js';

const HIGH = 50;
const LOW = 7;

const scenario: Scenario = {
  name: 'stale-epoch',
  checks: `after epoch ${HIGH} then a lower ${LOW}, the peer promotes above ${HIGH}`,
  sections: '6.1, 6.2, 6.3',
  async run(ctx) {
    const endpoint = await ctx.endpoint();
    const squatter = await ctx.squatter(endpoint);
    const peer = await ctx.peer({ endpoint });
    await squatter.heartbeatUntil({ instanceId: 'kit-high', epoch: HIGH }, peerFollows(peer, 'kit-high', 10_000), 10_000);
    const low = await squatter.heartbeatUntil({ instanceId: 'kit-low', epoch: LOW }, peerFollows(peer, 'kit-low', CHANGE_BOUND), CHANGE_BOUND);
    check(epochOf(low) === LOW, `peer's "following" line for kit-low says epoch ${String(low.epoch)}, sent ${LOW}`);
    const t0 = hostNow();
    squatter.close();
    const term = await peerPrimary(peer, CHANGE_BOUND, t0);
    check(epochOf(term) > HIGH, `peer took epoch ${String(term.epoch)}; it had heard ${HIGH} before ${LOW}`);
    ctx.note(`heard ${HIGH} then ${LOW}; peer promoted with ${epochOf(term)}`);
  },
};
export default scenario;
