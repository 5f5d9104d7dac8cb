/**
 * Revisions at the ceiling against a real redis-server: the revision key is set near or past
 * 2^53 - 1 with a raw ioredis client (what anyone with write access to the project's keys can
 * do), and nodes hand over in turn. Before, a counter past 2^53 gave two leaders the same
 * revision, and revisions within 57 of 2^53 came back wrong (ioredis 6 misreads such integer
 * replies; cjson rounds revisions above 10^14 in events and notices).
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { run, type Cluster, type RoleChange } from '../../src/redis.js';

const MAX = Number.MAX_SAFE_INTEGER;
const skip = redisSkipReason();
let server: RedisServer;
let raw: Redis;

beforeAll(async () => {
  if (skip !== undefined) return;
  server = await RedisServer.start();
  raw = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await raw.connect();
});
afterAll(async () => {
  raw?.disconnect();
  await server?.kill();
});

const clusters: Cluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.close().catch(() => undefined);
});

const fast = { leaseTTL: 1000, maxDrift: 500, tickInterval: 100 } as const;

/** Every revision handed to an onStart of the project, in order. */
type Starts = Array<{ node: string; revision: number }>;

async function node(project: string, nodeId: string, starts: Starts): Promise<Cluster> {
  const c = await run({
    project,
    nodeId,
    redisUrl: server.url,
    ...fast,
    onStart: ({ revision }) => void starts.push({ node: nodeId, revision }),
  });
  clusters.push(c);
  return c;
}

function nextPrimary(cluster: Cluster, timeout = 5000): Promise<RoleChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no promotion within ${timeout} ms (${cluster.formatStatus()})`)), timeout);
    const on = (c: RoleChange): void => {
      if (c.to !== 'primary') return;
      clearTimeout(timer);
      cluster.off('roleChanged', on);
      resolve(c);
    };
    cluster.on('roleChanged', on);
  });
}

/** Resolves once `pred` holds, checked every 10 ms; rejects after `timeout` ms. */
async function until(pred: () => boolean, timeout: number, what: string): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeout} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(skip !== undefined)('revisions at the ceiling (real Redis)', () => {
  it('hands out exact revisions up to 2^53 - 1, then no leader', async () => {
    const project = uniqueProject('rev');
    await raw.set(`{${project}}:revision`, String(MAX - 3));
    const starts: Starts = [];
    const a = await node(project, 'a', starts);
    expect(a.role).toBe('primary');
    const b = await node(project, 'b', starts);
    const bUp = nextPrimary(b);
    await a.close();
    await bUp;
    const c = await node(project, 'c', starts);
    const cUp = nextPrimary(c);
    await b.close();
    await cUp;
    const d = await node(project, 'd', starts);
    await c.close();
    // d is refused at once (the release is published) and on every tick after (or, as before
    // the fix, takes the lease with a revision no node can trust).
    await until(() => d.status().redis.revisionRefusals >= 3 || d.role === 'primary', 5000, 'three refused acquires');

    expect(starts).toEqual([
      { node: 'a', revision: MAX - 2 },
      { node: 'b', revision: MAX - 1 },
      { node: 'c', revision: MAX },
    ]);
    expect(d.status()).toMatchObject({ role: 'secondary', primary: undefined, redis: { revisionExhausted: true, leader: undefined } });
    expect(await raw.get(`{${project}}:revision`)).toBe(String(MAX));
    // Events carry the exact revisions (cjson would have written 9.007199254741e+15).
    const elected = (await d.events()).filter((e) => e.action === 'elected').map((e) => e.revision);
    expect(elected).toEqual([MAX, MAX - 1, MAX - 2]);
  });

  it('a counter set past 2^53 gives nobody the lease', async () => {
    const project = uniqueProject('rev');
    const key = `{${project}}:revision`;
    await raw.set(key, '9007199254740993');
    const starts: Starts = [];
    const a = await node(project, 'a', starts);
    const b = await node(project, 'b', starts);
    await until(
      () => (a.status().redis.revisionRefusals >= 3 && b.status().redis.revisionRefusals >= 3) || starts.length > 0,
      5000,
      'three refused acquires each',
    );
    expect(starts).toEqual([]);
    expect([a.role, b.role]).toEqual(['secondary', 'secondary']);
    expect(a.status().redis.revisionExhausted).toBe(true);
    expect(await raw.get(key)).toBe('9007199254740993');
    expect(await raw.exists(`{${project}}:leader`)).toBe(0);
    expect((await a.events()).filter((e) => e.action === 'elected')).toEqual([]);
  });

  it('leads again from revision 1 after the key is deleted', async () => {
    // The documented reset: stop every node, delete the revision key, start them again.
    const project = uniqueProject('rev');
    const key = `{${project}}:revision`;
    await raw.set(key, String(MAX));
    const starts: Starts = [];
    const a = await node(project, 'a', starts);
    expect(a.status().redis.revisionExhausted).toBe(true);
    await a.close();
    await raw.del(key);
    const a2 = await node(project, 'a', starts);
    expect(a2.role).toBe('primary');
    expect(starts).toEqual([{ node: 'a', revision: 1 }]);
  });
});
