/**
 * The transport conformance suite against the in-memory transport of the test kit
 * (src/testing/memory-endpoint.ts), on a fake clock: the suite advances it as it waits.
 */
import { describe, it } from 'vitest';
import { transportConformance } from 'failover-watch/transport';
import { FakeClock } from '../../../src/runtime/clock.js';
import { MemoryEndpoint } from '../../../src/testing/memory-endpoint.js';
import { NodeClock } from '../../../src/testing/node-clock.js';

transportConformance('memory', () => {
  const clock = new FakeClock();
  const endpoint = new MemoryEndpoint(clock, { latency: 1, reconnectDelay: 10 });
  let n = 0;
  return {
    transport: () => endpoint.transport(`node-${++n}`, new NodeClock(clock)),
    advance: (ms) => clock.advance(ms),
    dispose: () => endpoint.dispose(),
  };
}, { describe, it, timeout: 2000 });
