/**
 * A worker that must run on exactly one machine at a time: the one holding a Redis lease leads,
 * the others stand by and take over within the lease TTL if it crashes, or in milliseconds if it
 * stops gracefully.
 *
 * Run it on several machines (or terminals), pointing at the same Redis:
 *   REDIS_URL=redis://10.0.0.5:6379 npx tsx examples/redis-worker.ts
 */
import { run } from 'failover-watch/redis';

const cluster = await run({
  project: 'nightly-billing', // the election's name: every node of this worker uses the same one
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  ...(process.env.NODE_ID ? { nodeId: process.env.NODE_ID } : {}),
  leaseTTL: 3000,
  onStart: async ({ revision, signal }) => {
    // `revision` is a fencing token: pass it to storage that rejects writes from older leaders.
    console.log(`leading (revision ${revision}): starting the billing loop`);
    signal.addEventListener('abort', () => console.log('leadership lost: stopping the billing loop'));
  },
  onStop: () => console.log('stopped leading'),
});

cluster.on('roleChanged', (change) => console.log(`role: ${change.from} -> ${change.to}`));
console.log(`started as ${cluster.role}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // close() releases the lease and tells the standbys: one takes over at once.
  process.once(signal, () => void cluster.close().finally(() => console.log('closed')));
}
