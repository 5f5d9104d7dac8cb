/**
 * failover-watch/testing: a test kit for applications that embed failover-watch. A cluster of
 * real watchers on an endpoint and a state file in memory, on one fake clock, in which your
 * `onPromote`/`onDemote` meet crashes, graceful handovers, silence, stalls, partitions and higher
 * epochs, deterministically, in milliseconds. See docs/TESTING.md.
 *
 * @example
 * import { createTestCluster } from 'failover-watch/testing';
 *
 * const cluster = createTestCluster({ nodes: ['a', 'b'], options: { heartbeatInterval: 100, heartbeatTimeout: 300 } });
 * await cluster.start();
 * cluster.crash('a');
 * await cluster.until(() => cluster.primary() === 'b', { within: 100 });
 * await cluster.shutdown();
 *
 * @module
 */
export { createTestCluster, TestCluster } from './test-cluster.js';
export type {
  TestClusterOptions,
  TestNodeOptions,
  TestNodeSpec,
  TestNodeState,
  TestPromoteContext,
  TestDemoteContext,
  TestRoleChange,
  TestEvent,
  TestFault,
  TestViolation,
} from './test-cluster.js';
export { ForeignPrimary } from './foreign-primary.js';
export type { ForeignPrimaryOptions } from './foreign-primary.js';
export { FakeClock } from '../runtime/clock.js';
