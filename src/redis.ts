/**
 * failover-watch/redis: leader election on Redis leases, for processes on more than one host.
 *
 * {@link Cluster} implements the election contract (`src/election/contract.ts`, docs/ELECTION.md)
 * like the ZeroMQ `Watcher` and the etcd and PostgreSQL elections: `new Cluster(config)`, then
 * `start()`, `onPromote`/`onDemote`, `epoch`, `instanceId`, `roleChanged`, `status()` with the
 * common core and a `redis` section. go-failover's names stay as a documented mapping onto it,
 * not a second implementation: `run(config)` is `new Cluster(config)` + `start()`, `close()` is
 * `shutdown()`, `onStart`/`onStop` are wrapped into `onPromote`/`onDemote`, `nodeId` is
 * `instanceId`, `revision` is `epoch`, and `nodeInfo()`, `stats()` and `formatStats` (in
 * `redis/stats.ts`) render the same state. The code lives in `redis/` (`cluster.ts`, the driver
 * around the pure machine in `core/lease-machine.ts`; `lease-options.ts`; `stats.ts`).
 *
 * Guarantees and limits (details in docs/REDIS.md):
 * - at most one node holds the lease at a time (atomic scripts on one Redis server); a leader
 *   stops acting as leader within `maxDrift` of its last successful refresh, before its lease can
 *   expire, up to clock-rate differences between the hosts and Redis;
 * - the revision handed to `onStart` grows at every new term: pass it to storage that can reject
 *   writes of an older term (fencing), the only protection against a leader paused past its lease;
 *   it is always an integer from 1 to 2^53 - 1: past that, no node leads (`revisionExhausted`)
 *   until an operator resets the counter;
 * - `onStop` runs once per `onStart`, after it settled; a closing leader releases the lease after
 *   `onStop` (at most 1 s), and a standby takes over in milliseconds through pub/sub;
 * - listeners run after the state changed, asynchronously, and their throws are caught.
 *
 * Only this entry point loads ioredis.
 *
 * @example
 * import { run } from 'failover-watch/redis';
 * const cluster = await run({
 *   project: 'billing',
 *   strategy: 'priority',
 *   nodePriority: 1,
 *   redisUrl: process.env.REDIS_URL,
 *   onStart: async ({ revision, signal }) => { await work(revision, signal); },
 * });
 * process.on('SIGTERM', () => void cluster.close());
 * await cluster.wait();
 *
 * @module
 */
export * from './redis/cluster.js';
