/**
 * The `failover-watch/redis` API in one process against a real redis-server: config validation
 * before connecting, run/close/wait lifecycle, the Watcher-shaped events, iterator and status,
 * listener isolation, and a Redis that cannot be reached at start.
 */
import { getEventListeners } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../harness/cluster.js';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { InvalidOptionError, formatStats, isFailoverError, run, type Cluster, type ClusterConfig, type RoleChange } from '../../src/redis.js';

const skip = redisSkipReason();
let server: RedisServer;

beforeAll(async () => {
  if (skip === undefined) server = await RedisServer.start();
});
afterAll(async () => {
  await server?.kill();
});

const fast = { leaseTTL: 1000, maxDrift: 500, tickInterval: 100 } as const;

/** Resolves with the first role change matching `pred`, or rejects after `timeout`. */
function nextChange(cluster: Cluster, pred: (c: RoleChange) => boolean, timeout = 5000): Promise<RoleChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cluster.off('roleChanged', on);
      reject(new Error(`no matching roleChanged within ${timeout} ms (${cluster.formatStatus()})`));
    }, timeout);
    const on = (c: RoleChange) => {
      if (!pred(c)) return;
      clearTimeout(timer);
      cluster.off('roleChanged', on);
      resolve(c);
    };
    cluster.on('roleChanged', on);
  });
}

describe('run() rejects an invalid config before connecting', () => {
  // An unreachable URL: had run() tried to connect, it would wait for startTimeout instead.
  const base: ClusterConfig = { project: 'p', redisUrl: 'redis://127.0.0.1:1', startTimeout: 60_000 };
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['project missing', { project: undefined }, 'project'],
    ['project with a brace', { project: 'a{b}' }, 'project'],
    ['project with a space', { project: 'a b' }, 'project'],
    ['project with a glob', { project: 'a*' }, 'project'],
    ['nodeId empty', { nodeId: '' }, 'nodeId'],
    ['nodePriority fractional', { nodePriority: 1.5 }, 'nodePriority'],
    ['strategy unknown', { strategy: 'fastest' }, 'strategy'],
    ['redisUrl not a redis URL', { redisUrl: 'http://x' }, 'redisUrl'],
    ['leaseTTL below 100', { leaseTTL: 99 }, 'leaseTTL'],
    ['maxDrift not below leaseTTL', { leaseTTL: 1000, maxDrift: 1000 }, 'maxDrift'],
    ['tickInterval too long for maxDrift', { leaseTTL: 1000, maxDrift: 500, tickInterval: 450 }, 'tickInterval'],
    ['onStart not a function', { onStart: 'go' }, 'onStart'],
    ['logger without methods', { logger: {} }, 'logger'],
    ['unknown option', { leaseTtl: 1000 }, 'leaseTtl'],
    ['instanceId and its alias nodeId', { instanceId: 'a', nodeId: 'a' }, 'instanceId'],
    ['priority and its alias nodePriority', { priority: 1, nodePriority: 1 }, 'priority'],
    ['onPromote and its alias onStart', { onPromote: () => undefined, onStart: () => undefined }, 'onPromote'],
    ['onDemote and its alias onStop', { onDemote: () => undefined, onStop: () => undefined }, 'onDemote'],
    ['enabled not a boolean', { enabled: 'yes' }, 'enabled'],
  ];
  it.each(cases)('%s', async (_name, patch, option) => {
    const started = performance.now();
    const error: unknown = await run({ ...base, ...patch } as unknown as ClusterConfig).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe(option);
    expect((error as InvalidOptionError).code).toBe('ERR_FAILOVER_INVALID_OPTION');
    expect((error as Error).message).toMatch(/expected .* received/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('defaults: tickInterval 500, leaseTTL 3000, maxDrift leaseTTL/2, race, priority 1; a short lease shortens the tick', async () => {
    const { Cluster } = await import('../../src/redis.js');
    const c = new Cluster({ project: 'defaults', redisUrl: 'redis://127.0.0.1:1' });
    expect(c.options).toMatchObject({ tickInterval: 500, leaseTTL: 3000, maxDrift: 1500, strategy: 'race', nodePriority: 1 });
    const short = new Cluster({ project: 'defaults', redisUrl: 'redis://127.0.0.1:1', leaseTTL: 100 });
    expect(short.options).toMatchObject({ leaseTTL: 100, maxDrift: 50, tickInterval: 16 });
  });
});

describe.skipIf(skip !== undefined)('Cluster lifecycle on a real Redis', () => {
  it('rejects with ERR_FAILOVER_TIMEOUT when Redis cannot be reached within startTimeout', async () => {
    const port = await freePort();
    const error: unknown = await run({ project: uniqueProject('down'), redisUrl: `redis://127.0.0.1:${port}`, startTimeout: 300, ...fast }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isFailoverError(error, 'ERR_FAILOVER_TIMEOUT')).toBe(true);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
  });

  it('close() is idempotent, wait() resolves, the iterator ends with stopped, a throwing listener is isolated', async () => {
    const project = uniqueProject('api');
    const revisions: number[] = [];
    const a = await run({ project, nodeId: 'a', redisUrl: server.url, ...fast, onStart: ({ revision }) => void revisions.push(revision) });
    expect(a.role).toBe('primary');
    expect(a.nodeInfo()).toEqual({ nodeId: 'a', priority: 1, project, isLeader: true, revision: 1 });
    a.on('roleChanged', () => {
      throw new Error('listener bug');
    });
    const changes: RoleChange[] = [];
    const iterated = (async () => {
      for await (const c of a.roleChanges()) changes.push(c);
    })();

    const b = await run({ project, nodeId: 'b', redisUrl: server.url, ...fast });
    expect(b.role).toBe('secondary');
    expect(b.status()).toMatchObject({ backend: 'redis', instanceId: 'b', role: 'secondary', epoch: 1, primary: { instanceId: 'a', epoch: 1 }, redis: { connection: 'ok', leader: { nodeId: 'a', revision: 1 } } });
    expect(b.formatStatus()).toMatch(/^b: secondary, revision 1; following a/);
    const bLeads = nextChange(b, (c) => c.to === 'primary');

    const first = a.close();
    expect(a.close()).toBe(first);
    await first;
    await a.wait();
    await iterated;
    expect(changes.map((c) => [c.from, c.to, c.reason])).toEqual([['primary', 'stopped', 'shutdown']]);
    // Listeners attached right after run() resolved still get the first change (starting -> primary).
    expect(a.status().listenerErrors).toBe(2);
    expect(a.role).toBe('stopped');

    const change = await bLeads;
    expect(change).toMatchObject({ from: 'secondary', to: 'primary', epoch: 2, reason: 'handover', instanceId: 'b' });
    expect(b.formatStatus()).toMatch(/^b: primary, revision 2; lease refreshed/);
    const stats = await b.stats();
    expect(stats.liveNodes.map((n) => n.nodeId)).toEqual(['b']);
    expect(stats.events.map((e) => `${e.nodeId} ${e.action}`)).toEqual(['b elected', 'a released', 'a elected']);
    const html = formatStats(stats);
    expect(html).toContain('<b>leader</b>');
    expect(html.length).toBeLessThan(1000);
    await b.close();
    expect(revisions).toEqual([1]);
  });

  it('AUTH/ACL through the URL: a user with a password elects; a wrong password fails run() without echoing it', async () => {
    const secured = await RedisServer.start(10_000, ['--requirepass', 'default-pw', '--user', 'app', 'on', '>app-pw', '~*', '&*', '+@all']);
    try {
      const project = uniqueProject('acl');
      const ok = await run({ project, nodeId: 'acl', redisUrl: `redis://app:app-pw@127.0.0.1:${secured.port}`, ...fast });
      expect(ok.role).toBe('primary');
      await ok.close();
      const error: unknown = await run({ project, nodeId: 'bad', redisUrl: `redis://app:wrong-pw@127.0.0.1:${secured.port}`, startTimeout: 500, ...fast }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isFailoverError(error, 'ERR_FAILOVER_TIMEOUT')).toBe(true);
      expect((error as Error).message).not.toContain('wrong-pw');
      expect((error as Error).message).toContain('app:***@');
    } finally {
      await secured.kill();
    }
  });

  it('close() with Redis gone: a leader rejects (its lease could not be released), a standby resolves', async () => {
    const own = await RedisServer.start();
    const project = uniqueProject('gone');
    const a = await run({ project, nodeId: 'a', redisUrl: own.url, ...fast });
    const b = await run({ project, nodeId: 'b', redisUrl: own.url, ...fast });
    expect([a.role, b.role]).toEqual(['primary', 'secondary']);
    await own.kill();
    const error: unknown = await a.close().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isFailoverError(error, 'ERR_FAILOVER_TRANSPORT')).toBe(true);
    expect((error as Error).message).toMatch(/could not be released/);
    expect(await a.close().catch((e: unknown) => e)).toBe(error);
    await expect(b.close()).resolves.toBeUndefined();
  });

  it('aborting the config signal closes the cluster', async () => {
    const controller = new AbortController();
    const c = await run({ project: uniqueProject('signal'), nodeId: 'x', redisUrl: server.url, ...fast, signal: controller.signal });
    controller.abort();
    await c.wait();
    expect(c.role).toBe('stopped');
  });

  it('close() leaves no listener on a long-lived config signal (it would keep the closed cluster alive)', async () => {
    const controller = new AbortController();
    const before = getEventListeners(controller.signal, 'abort').length;
    const c = await run({ project: uniqueProject('signal-kept'), nodeId: 'y', redisUrl: server.url, ...fast, signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort').length).toBe(before + 1);
    await c.close();
    expect(getEventListeners(controller.signal, 'abort').length).toBe(before);
  });

  it('formatStats escapes HTML in ids', () => {
    const html = formatStats(
      {
        node: { nodeId: '<x>', priority: 1, project: 'a&b', isLeader: false, revision: 3 },
        liveNodes: [],
        events: [{ nodeId: '<x>', action: 'elected', timestamp: 0, revision: 3, reason: 'vacant' }],
      },
      0,
    );
    expect(html).not.toContain('<x>');
    expect(html).toContain('&lt;x&gt;');
    expect(html).toContain('a&amp;b');
  });
});
