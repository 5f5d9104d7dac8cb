/**
 * The Redis `Cluster`'s handling of the leader's metadata on a FakeClock, with the in-memory lease
 * store extended by a metadata map: a read that fails or finds metadata breaking the rules is no
 * news (no event, the last good metadata stands), and a later good read is reported once.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock, run, type Cluster } from '../../../src/redis.js';
import type { Metadata } from '../../../src/protocol/metadata.js';
import type { LeaseStoreHandlers, StoredMetadata } from '../../../src/transport/redis/lease-store.js';
import { MemoryLeaseServer, MemoryLeaseStore } from '../../../src/transport/redis/memory-lease-store.js';
import { storedMetadata } from '../../../src/transport/redis/redis-lease-store.js';

const BASE = { leaseTTL: 1000, maxDrift: 500, tickInterval: 100 } as const;

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

/** The memory store plus the `{project}:metadata` hash (raw JSON strings, as Redis holds them). */
class MetadataStore extends MemoryLeaseStore {
  handlers: LeaseStoreHandlers | undefined;
  failReads = false;
  constructor(
    server: MemoryLeaseServer,
    readonly nodeId: string,
    readonly hash: Map<string, string>,
    readonly all: MetadataStore[],
  ) {
    super(server, { nodeId, session: `${nodeId}-s`, priority: 1, strategy: 'race', leaseTTL: BASE.leaseTTL, eventsLimit: 10 });
    all.push(this);
  }
  override open(handlers: LeaseStoreHandlers): void {
    this.handlers = handlers;
    super.open(handlers);
  }
  async writeMetadata(metadata: Metadata): Promise<void> {
    if (Object.keys(metadata).length === 0) this.hash.delete(this.nodeId);
    else this.hash.set(this.nodeId, JSON.stringify(metadata));
    for (const s of this.all) s.handlers?.onMetadataNotice?.(this.nodeId);
  }
  async readMetadata(nodeIds: readonly string[]): Promise<StoredMetadata[]> {
    if (this.failReads) throw new Error('connection lost');
    return nodeIds.map((id) => storedMetadata(this.hash.get(id) ?? null));
  }
}

describe('Cluster metadata on a fake clock', () => {
  it('a failed or bad read is no news; a good one is', async () => {
    const clock = new FakeClock(0, 1_700_000_000_000);
    const server = new MemoryLeaseServer(() => clock.wallNow());
    const hash = new Map<string, string>();
    const all: MetadataStore[] = [];
    const start = async (nodeId: string, metadata: Metadata): Promise<[Cluster, MetadataStore]> => {
      const store = new MetadataStore(server, nodeId, hash, all);
      const cluster = await run({ project: 'unit', nodeId, clock, metadata, ...BASE }, { store, random: () => 0.5 });
      await flush();
      return [cluster, store];
    };
    const [a] = await start('a', { port: '7001' });
    const [b, bStore] = await start('b', {});
    expect(a.isLeader).toBe(true);
    expect(b.status().redis.leaderMetadata).toEqual({ port: '7001' });
    const updates: Metadata[] = [];
    b.on('primaryMetadataChanged', (e) => void updates.push(e.metadata));

    bStore.failReads = true;
    a.setMetadata({ port: '7002' });
    await flush();
    expect(b.status().redis.leaderMetadata).toEqual({ port: '7001' });
    expect(b.status().redis.metadataDropped).toBe(0);

    bStore.failReads = false;
    hash.set('a', '{"port":7003}');
    bStore.handlers?.onMetadataNotice?.('a');
    await flush();
    expect(b.status().redis.leaderMetadata).toEqual({ port: '7001' });
    expect(b.status().redis.metadataDropped).toBe(1);
    expect(updates).toEqual([]);

    a.setMetadata({ port: '7004' });
    await flush();
    expect(updates).toEqual([{ port: '7004' }]);
    await Promise.all([a.close(), b.close()]);
  });
});
