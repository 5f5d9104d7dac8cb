import { describe, expect, it } from 'vitest';
import { cliProbeTopic } from '../../../src/cli/wire-listener.js';

describe('cliProbeTopic', () => {
  it('has a decimal nonce as PROTOCOL.md section 5 says', () => {
    // The document gives the probe topic as probe.<instanceId>.<nonce> with a decimal nonce; the
    // CLI once sent hex, which a peer written from the document could reject.
    for (let i = 0; i < 200; i++) expect(cliProbeTopic()).toMatch(/^probe\.failover-watch-cli\.[0-9]{1,15}$/);
  });

  it('differs between calls', () => {
    // Two CLI processes probing at once must not share a topic: one's unsubscribe would cancel
    // the other's probe. 48 random bits make a repeat in 50 draws practically impossible.
    const topics = new Set(Array.from({ length: 50 }, () => cliProbeTopic()));
    expect(topics.size).toBe(50);
  });
});
