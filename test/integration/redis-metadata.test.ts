/**
 * Application metadata on the Redis election against a real redis-server: a leader's metadata
 * reaches its followers (primaryChanged, status(), liveNodes()), a runtime update arrives as
 * primaryMetadataChanged, metadata written into Redis by hand that breaks the rules is dropped
 * and counted (never thrown, never a role change), and an invalid option names its key.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { InvalidOptionError, run, type Cluster, type ClusterConfig, type PrimaryChangedEvent, type RoleChange } from '../../src/redis.js';

const skip = redisSkipReason();
let server: RedisServer;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  if (skip === undefined) server = await RedisServer.start();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await server?.kill();
});

const fast = { leaseTTL: 1000, maxDrift: 500, tickInterval: 100, strategy: 'priority' } as const;

async function start(config: Omit<ClusterConfig, 'redisUrl'>): Promise<Cluster> {
  const cluster = await run({ ...fast, redisUrl: server.url, ...config });
  cleanups.push(() => cluster.close().catch(() => undefined));
  return cluster;
}

/** Resolves once `pred()` holds (checked every 10 ms), or rejects after `timeout` ms. */
async function waitFor(what: string, pred: () => boolean | Promise<boolean>, timeout = 5000): Promise<void> {
  const deadline = performance.now() + timeout;
  for (let i = 0; i < 10_000; i++) {
    if (await pred()) return;
    if (performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`not within ${timeout} ms: ${what}`);
}

/** The first `event` payload matching `pred`, or a rejection after `timeout` ms. */
function next<T>(cluster: Cluster, event: 'primaryChanged' | 'primaryMetadataChanged', pred: (e: T) => boolean, timeout = 5000): Promise<T> {
  const emitter = cluster as unknown as { on(e: string, l: (x: T) => void): void; off(e: string, l: (x: T) => void): void };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no matching ${event} within ${timeout} ms (${cluster.formatStatus()})`));
    }, timeout);
    const on = (e: T): void => {
      if (!pred(e)) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(e);
    };
    emitter.on(event, on);
  });
}

/** A raw connection to the test's server, to write what no well-behaved node would. */
function rawClient(): Redis {
  const raw = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  cleanups.push(() => raw.quit().catch(() => raw.disconnect()));
  return raw;
}

describe.skipIf(skip !== undefined)('Redis metadata', () => {
  it('followers see the leader metadata on takeover', { timeout: 30_000 }, async () => {
    const project = uniqueProject('fw-meta');
    // b leads alone first, so its primaryChanged listener is on before a takes over.
    const b = await start({ project, nodeId: 'b', nodePriority: 2, metadata: { port: '7002' } });
    expect(b.isLeader).toBe(true);
    const toA = next<PrimaryChangedEvent>(b, 'primaryChanged', (e) => e.instanceId === 'a');
    const a = await start({ project, nodeId: 'a', nodePriority: 1, metadata: { port: '7001', zone: 'x' } });
    const seen = await toA;
    expect(seen.metadata).toEqual({ port: '7001', zone: 'x' });
    expect(a.isLeader).toBe(true);
    expect(b.status().redis.leaderMetadata).toEqual({ port: '7001', zone: 'x' });
    expect(b.status().redis.metadata).toEqual({ port: '7002' });
    expect(b.status().redis.metadataDropped).toBe(0);

    const nodes = await b.liveNodes();
    expect(nodes.map((n) => [n.instanceId, n.role === 'primary', n.metadata])).toEqual([
      ['a', true, { port: '7001', zone: 'x' }],
      ['b', false, { port: '7002' }],
    ]);

    // A third node follows a; when a leaves, it gets b's metadata with b's primaryChanged.
    const c = await start({ project, nodeId: 'c', nodePriority: 3 });
    await waitFor('c reads a metadata', () => c.status().redis.leaderMetadata?.port === '7001');
    const toB = next<PrimaryChangedEvent>(c, 'primaryChanged', (e) => e.instanceId === 'b');
    await a.close();
    const takeover = await toB;
    expect(takeover.metadata).toEqual({ port: '7002' });
    expect(c.status().redis.leaderMetadata).toEqual({ port: '7002' });
    // The new leader no longer reports a followed leader's metadata; a left with its own.
    await waitFor('b leads', () => b.isLeader);
    expect(b.status().redis.leaderMetadata).toBeUndefined();
    const after = await c.liveNodes();
    expect(after.map((n) => [n.instanceId, n.metadata])).toEqual([
      ['b', { port: '7002' }],
      ['c', {}],
    ]);
  });

  it('setMetadata reaches followers as an event', { timeout: 30_000 }, async () => {
    const project = uniqueProject('fw-meta');
    const a = await start({ project, nodeId: 'a', nodePriority: 1, metadata: { port: '7001' } });
    const b = await start({ project, nodeId: 'b', nodePriority: 2 });
    await waitFor('b reads a metadata', () => b.status().redis.leaderMetadata?.port === '7001');
    const roles: RoleChange[] = [];
    a.on('roleChanged', (c) => roles.push(c));
    b.on('roleChanged', (c) => roles.push(c));

    const changed = next<{ instanceId: string; epoch: number; metadata: Record<string, string> }>(b, 'primaryMetadataChanged', () => true);
    a.setMetadata({ port: '8001', build: '42' });
    const event = await changed;
    expect(event).toMatchObject({ instanceId: 'a', epoch: a.revision, metadata: { port: '8001', build: '42' } });
    expect(b.status().redis.leaderMetadata).toEqual({ port: '8001', build: '42' });
    expect(a.status().redis.metadata).toEqual({ port: '8001', build: '42' });

    // Removing every key is an update too.
    const cleared = next<{ metadata: Record<string, string> }>(b, 'primaryMetadataChanged', () => true);
    a.setMetadata({});
    expect((await cleared).metadata).toEqual({});

    // An invalid update throws, names the key, and leaves the announced metadata as it was.
    const error = (() => {
      try {
        a.setMetadata({ port: 8001 } as unknown as Record<string, string>);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe('metadata.port');
    expect(a.status().redis.metadata).toEqual({});
    expect(roles).toEqual([]);
  });

  it('drops hand-written bad metadata and counts it', { timeout: 30_000 }, async () => {
    const project = uniqueProject('fw-meta');
    const key = `{${project}}:metadata`;
    const channel = `{${project}}:leadership`;
    const a = await start({ project, nodeId: 'a', nodePriority: 1, metadata: { port: '7001' } });
    const b = await start({ project, nodeId: 'b', nodePriority: 2 });
    await waitFor('b reads a metadata', () => b.status().redis.leaderMetadata?.port === '7001');
    const roles: RoleChange[] = [];
    const updates: Array<Record<string, string>> = [];
    a.on('roleChanged', (c) => roles.push(c));
    b.on('roleChanged', (c) => roles.push(c));
    b.on('primaryMetadataChanged', (e) => updates.push({ ...e.metadata }));
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => process.off('unhandledRejection', onUnhandled));

    const raw = rawClient();
    const notice = JSON.stringify({ type: 'metadata', nodeId: 'a' });
    const bad = [
      JSON.stringify({ port: 7001 }), // not a string value
      JSON.stringify({ 'bad key': 'x' }), // key outside the pattern
      JSON.stringify({ big: 'x'.repeat(300) }), // value over 256 bytes
      JSON.stringify(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']))), // 17 keys
      JSON.stringify(Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`.padEnd(60, 'k'), 'v'.repeat(100)]))), // > 2048 bytes
      'x'.repeat(100_000), // not JSON, and too long to parse
      '{"port":', // truncated JSON
      '["7001"]', // an array
      'null',
    ];
    for (const [i, value] of bad.entries()) {
      await raw.hset(key, 'a', value);
      await raw.publish(channel, notice);
      await waitFor(`drop #${i + 1}`, () => b.status().redis.metadataDropped === i + 1);
      // The last good metadata stands: a dropped read is no news.
      expect(b.status().redis.leaderMetadata).toEqual({ port: '7001' });
      const live = await b.liveNodes();
      expect(live.find((n) => n.instanceId === 'a')?.metadata).toBeUndefined();
    }
    // Garbage notices on the channel are ignored.
    for (const message of ['garbage', '{"type":"metadata","nodeId":5}', '{"type":"metadata"}', 'y'.repeat(200_000), '{"type":"elected","nodeId":"zz","revision":-1}']) {
      await raw.publish(channel, message);
    }
    // A valid update after all that is the only change b reports.
    const good = next<{ metadata: Record<string, string> }>(b, 'primaryMetadataChanged', () => true);
    a.setMetadata({ port: '9001' });
    expect((await good).metadata).toEqual({ port: '9001' });
    expect(updates).toEqual([{ port: '9001' }]);
    expect(b.status().redis.metadataDropped).toBe(bad.length);
    expect(roles).toEqual([]);
    expect(a.isLeader).toBe(true);
    expect(b.role).toBe('secondary');
    expect(unhandled).toEqual([]);
  });

  it('a new follower drops bad stored metadata', { timeout: 30_000 }, async () => {
    const project = uniqueProject('fw-meta');
    const a = await start({ project, nodeId: 'a', nodePriority: 1 });
    await rawClient().hset(`{${project}}:metadata`, 'a', '{"port":["7001"]}');
    const b = await start({ project, nodeId: 'b', nodePriority: 2 });
    await waitFor('b drops it', () => b.status().redis.metadataDropped === 1);
    expect(b.status().redis.leaderMetadata).toEqual({});
    expect(b.status().redis.leader?.nodeId).toBe('a');
    expect(a.isLeader).toBe(true);
  });
});

// No server needed: the option is refused before anything connects.
describe('an invalid metadata option names its key', () => {
  // An unreachable URL: had run() tried to connect, it would wait for startTimeout instead.
  const base = { project: 'p', redisUrl: 'redis://127.0.0.1:1', startTimeout: 60_000 };
  const cases: Array<[string, unknown, string]> = [
    ['a number value', { port: 7001 }, 'metadata.port'],
    ['a key with a space', { 'a b': 'x' }, 'metadata.a b'],
    ['a value over 256 bytes', { url: 'u'.repeat(257) }, 'metadata.url'],
    ['17 keys', Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])), 'metadata'],
    ['an array', ['x'], 'metadata'],
    ['a string', 'port=1', 'metadata'],
  ];
  it.each(cases)('%s', async (_name, metadata, option) => {
    const error: unknown = await run({ ...base, metadata } as unknown as ClusterConfig).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe(option);
    expect((error as Error).message).toMatch(/expected .* received/);
  });
});

describe.skipIf(skip !== undefined)('Redis metadata with the ACL of SECURITY.md', () => {
  it('stores and reads metadata with that ACL', { timeout: 30_000 }, async () => {
    const project = uniqueProject('fw-meta-acl');
    const acl = ['app', 'on', '>app-pw', `~{${project}}:*`, `&{${project}}:*`, '+@read', '+@write', '+@scripting', '+@pubsub', '+time'];
    const aclServer = await RedisServer.start(10_000, ['--user', ...acl, '--user', 'default', 'off']);
    cleanups.push(() => aclServer.kill());
    const warnings: string[] = [];
    const logger = { debug: () => undefined, info: () => undefined, warn: (m: string) => void warnings.push(m), error: (m: string) => void warnings.push(m) };
    const url = `redis://app:app-pw@127.0.0.1:${aclServer.port}`;
    const a = await run({ ...fast, project, nodeId: 'a', nodePriority: 1, redisUrl: url, logger, metadata: { port: '7001' } });
    cleanups.push(() => a.close().catch(() => undefined));
    const b = await run({ ...fast, project, nodeId: 'b', nodePriority: 2, redisUrl: url, logger });
    cleanups.push(() => b.close().catch(() => undefined));
    await waitFor('b reads a metadata', () => b.status().redis.leaderMetadata?.port === '7001');
    const changed = next<{ metadata: Record<string, string> }>(b, 'primaryMetadataChanged', () => true);
    a.setMetadata({ port: '7002' });
    expect((await changed).metadata).toEqual({ port: '7002' });
    expect(warnings).toEqual([]);
  });
});
