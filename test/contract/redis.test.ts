/**
 * The election contract on the Redis `Cluster`: a real redis-server on a free loopback port
 * (started once for the file), a fresh project (key prefix) per test, nodes in this process.
 *
 * What differs for a lease backend is declared here, not skipped: a crash is modelled as the
 * process vanishing from Redis (its connections closed, nothing released), so a standby takes
 * over only once the lease expires: `crashBoundMs` is `leaseTTL` plus a jittered tick plus slack,
 * where a graceful handover (`handoverBoundMs`) is a release notice over pub/sub.
 */
import { randomBytes } from 'node:crypto';
import { afterAll } from 'vitest';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { Cluster } from '../../src/redis.js';
import type { Election } from '../../src/election/contract.js';
import type { LeaseStore, LeaseStoreHandlers } from '../../src/transport/redis/lease-store.js';
import { leaseKeys } from '../../src/transport/redis/lease-keys.js';
import { RedisLeaseStore } from '../../src/transport/redis/redis-lease-store.js';
import { describeElectionBehaviour } from './election-behaviour.js';

const skip = redisSkipReason();
const LEASE = { leaseTTL: 1000, maxDrift: 500, tickInterval: 100 } as const;

let server: Promise<RedisServer> | undefined;
afterAll(async () => {
  await (await server)?.kill();
});

/** A store that can "crash": from then on it answers nothing and its connections are closed, with no release. */
class CrashableStore implements LeaseStore {
  crashed = false;
  constructor(readonly inner: RedisLeaseStore) {}
  #dead(): Promise<never> {
    return Promise.reject(new Error('crashed'));
  }
  open(handlers: LeaseStoreHandlers): void {
    const live = <A extends unknown[]>(fn: ((...a: A) => void) | undefined) => (...a: A) => {
      if (!this.crashed) fn?.(...a);
    };
    this.inner.open({
      onNotice: live(handlers.onNotice.bind(handlers)),
      onConnected: live(handlers.onConnected.bind(handlers)),
      onConnectionLost: live(handlers.onConnectionLost.bind(handlers)),
      onMetadataNotice: live(handlers.onMetadataNotice?.bind(handlers)),
    });
  }
  acquire: LeaseStore['acquire'] = (a) => (this.crashed ? this.#dead() : this.inner.acquire(a));
  refresh: LeaseStore['refresh'] = (a) => (this.crashed ? this.#dead() : this.inner.refresh(a));
  observe: LeaseStore['observe'] = (a) => (this.crashed ? this.#dead() : this.inner.observe(a));
  release: LeaseStore['release'] = (r, d) => (this.crashed ? this.#dead() : this.inner.release(r, d));
  liveNodes: LeaseStore['liveNodes'] = () => (this.crashed ? this.#dead() : this.inner.liveNodes());
  events: LeaseStore['events'] = (l) => (this.crashed ? this.#dead() : this.inner.events(l));
  writeMetadata: NonNullable<LeaseStore['writeMetadata']> = (m) => (this.crashed ? this.#dead() : this.inner.writeMetadata(m));
  readMetadata: NonNullable<LeaseStore['readMetadata']> = (ids) => (this.crashed ? this.#dead() : this.inner.readMetadata(ids));
  close(): Promise<void> {
    return this.inner.close();
  }
  async crash(): Promise<void> {
    this.crashed = true;
    await this.inner.close();
  }
}

if (skip === undefined) {
  describeElectionBehaviour({
    name: 'redis',
    // A graceful handover: onDemote, a release and a pub/sub notice: milliseconds, slack for load.
    handoverBoundMs: 1500,
    // The lease must expire: leaseTTL (1000) + a tick (100 +20%) + the acquire, with slack.
    crashBoundMs: LEASE.leaseTTL + 1500,
    async setup() {
      server ??= RedisServer.start();
      const redis = await server;
      const project = uniqueProject('contract');
      const stores = new Map<Election, CrashableStore>();
      return {
        node: (o) => {
          const priority = o.priority ?? 1;
          const store = new CrashableStore(
            new RedisLeaseStore({
              keys: leaseKeys(project),
              nodeId: o.instanceId,
              session: randomBytes(12).toString('hex'),
              priority,
              strategy: 'race',
              leaseTTL: LEASE.leaseTTL,
              tickInterval: LEASE.tickInterval,
              commandTimeout: LEASE.maxDrift,
              eventsLimit: 100,
              redisUrl: redis.url,
              redisOptions: undefined,
            }),
          );
          const node = new Cluster(
            {
              project,
              redisUrl: redis.url,
              instanceId: o.instanceId,
              priority,
              ...LEASE,
              ...(o.onPromote !== undefined ? { onPromote: o.onPromote } : {}),
              ...(o.onDemote !== undefined ? { onDemote: o.onDemote } : {}),
            },
            { store },
          );
          stores.set(node, store);
          return node;
        },
        crash: async (node) => stores.get(node)!.crash(),
        teardown: async () => undefined,
      };
    },
  });
}
