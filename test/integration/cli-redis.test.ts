/**
 * `status --redis` and `watch --redis` as real OS processes (`node bin/failover-watch.js`)
 * against a real redis-server on a free loopback port, with the election run by library
 * clusters in this process; and the library's Redis followers emitting `primaryChanged`. Every
 * wait is bounded and driven by a process's output or exit, or by an event; only processes this
 * file started are stopped, by pid.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CliProcesses, runCli } from '../../harness/cli-process.js';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { run, type Cluster, type PrimaryChangedEvent } from '../../src/redis.js';

const skip = redisSkipReason();
let server: RedisServer;
const clusters: Cluster[] = [];
const cli = new CliProcesses();
/** Bound on one CLI process (tsx compiles the sources on first use). */
const PROCESS_TIMEOUT = 20_000;
/**
 * Slow leases on purpose: the CLI processes load both cores while they start, and a lease or a
 * registration that lapses under that load would change the answer being checked. Handovers
 * (close) go through pub/sub and do not wait for the lease.
 */
const timing = { leaseTTL: 10_000, maxDrift: 5000, tickInterval: 1000 } as const;

beforeAll(async () => {
  if (skip === undefined) server = await RedisServer.start();
});
afterEach(async () => {
  await cli.stopAll();
  await Promise.all(clusters.splice(0).map((c) => c.close().catch(() => undefined)));
});
afterAll(async () => {
  await server?.kill();
});

async function node(project: string, nodeId: string, nodePriority = 1): Promise<Cluster> {
  const cluster = await run({ project, nodeId, redisUrl: server.url, ...timing, strategy: 'priority', nodePriority });
  clusters.push(cluster);
  return cluster;
}

describe.skipIf(skip !== undefined)('status --redis', () => {
  it('exits 0 and names the leader and its revision', async () => {
    const project = uniqueProject('cli-status');
    const a = await node(project, 'alpha');
    await node(project, 'beta');
    expect(a.role).toBe('primary');
    const r = await runCli(['status', '--redis', server.url, '--project', project]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^leader alpha of ${project}, revision ${a.revision} since \\S+Z, lease \\d+ ms left; live: alpha \\(priority 1\\) \\*, beta \\(priority 1\\)\\n$`));
  });

  it('--json: the ZeroMQ status fields plus the lease', async () => {
    const project = uniqueProject('cli-status-json');
    const a = await node(project, 'alpha');
    const r = await runCli(['status', '--redis', server.url, '--project', project, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ ok: true, backend: 'redis', project, instanceId: 'alpha', epoch: a.revision, revision: a.revision, priority: 1 });
    expect(j.leaseTtlMs).toBeGreaterThan(0);
    expect(j.leaseTtlMs).toBeLessThanOrEqual(timing.leaseTTL);
    expect(j.liveNodes).toEqual([{ nodeId: 'alpha', priority: 1, eligible: true, lastSeen: expect.any(Number), isLeader: true, metadata: {} }]);
    expect(typeof j.at).toBe('number');
  });

  it('exits 1 once the leader left and nobody leads', async () => {
    const project = uniqueProject('cli-status-none');
    const a = await node(project, 'alpha');
    await a.close();
    const r = await runCli(['status', '--redis', server.url, '--project', project, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, backend: 'redis', instanceId: null, epoch: null, lastRevision: 1 });
    const text = await runCli(['status', '--redis', server.url, '--project', project]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`no leader in ${project}: the lease is free (last revision 1)`);
  });

  it('exits 1 when Redis does not answer', async () => {
    const { freePort } = await import('../../harness/cluster.js');
    const r = await runCli(['status', '--redis', `redis://127.0.0.1:${await freePort()}`, '--project', 'p', '--timeout', '500']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/did not answer within 500 ms/);
  });
});

describe('usage errors', () => {
  const cases: Array<[string, string[], string]> = [
    ['--redis without --project', ['status', '--redis', 'redis://127.0.0.1:1'], '--redis needs --project NAME'],
    ['--redis with --endpoint', ['watch', '--redis', 'redis://127.0.0.1:1', '--project', 'p', '-e', 'tcp://127.0.0.1:1'], 'give exactly one backend'],
    ['neither backend', ['status'], 'give exactly one backend'],
    ['--project with --endpoint', ['status', '-e', 'tcp://127.0.0.1:1', '--project', 'p'], '--project is for the Redis, etcd and PostgreSQL backends'],
    ['a project with a brace', ['watch', '--redis', 'redis://127.0.0.1:1', '--project', 'a{b}'], '--project expects'],
    ['not a redis URL', ['status', '--redis', 'http://x', '--project', 'p'], 'redis:// or rediss://'],
  ];
  it.each(cases)('%s exits 2 with a clear message', async (_name, args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });
});

describe.skipIf(skip !== undefined)('watch --redis', () => {
  it('shows primaryChanged when the leader stops and another leads', async () => {
    const project = uniqueProject('cli-watch');
    const a = await node(project, 'alpha');
    const b = await node(project, 'beta');
    const watch = cli.spawn(['watch', '--redis', server.url, '--project', project, '--json']);
    await watch.waitFor((e) => e.event === 'primaryChanged' && e.instanceId === 'alpha', PROCESS_TIMEOUT, 'primaryChanged alpha');
    await a.close();
    const taken = await watch.waitFor((e) => e.event === 'primaryChanged' && e.instanceId === 'beta', 5000, 'primaryChanged beta');
    expect(b.role).toBe('primary');
    expect(taken).toMatchObject({ epoch: b.revision, previous: 'alpha', seq: null, pid: null, host: null });
    expect(taken.ttlMs).toBeGreaterThan(0);
    await b.close();
    await watch.waitFor((e) => e.event === 'primaryLost' && e.instanceId === 'beta', 5000, 'primaryLost beta');
    expect(watch.nonJson).toEqual([]);
  });
});

describe.skipIf(skip !== undefined)('the library on a real Redis', () => {
  // Priority strategy so that the successor is known: beta (1) is preferred to gamma (2).
  it('a standby emits primaryChanged for the new leader', async () => {
    const project = uniqueProject('lib-primary-changed');
    const a = await node(project, 'alpha', 0);
    const b = await node(project, 'beta', 1);
    const c = await node(project, 'gamma', 2);
    const seen: PrimaryChangedEvent[] = [];
    const next = new Promise<PrimaryChangedEvent>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no primaryChanged to beta within 5000 ms (${c.formatStatus()})`)), 5000);
      c.on('primaryChanged', (e) => {
        seen.push(e);
        if (e.instanceId !== 'beta') return;
        clearTimeout(timer);
        resolve(e);
      });
    });
    await a.close();
    const e = await next;
    expect(b.role).toBe('primary');
    expect(e).toMatchObject({ instanceId: 'beta', epoch: b.revision, priority: 1 });
    // Once per term: the first leader (seen at startup) at most once, then beta.
    expect(seen.map((s) => `${s.instanceId}@${s.epoch}`)).toEqual([...(seen.length === 2 ? ['alpha@1'] : []), `beta@${b.revision}`]);
  });
});

describe.skipIf(skip !== undefined)('an observer ACL user', () => {
  // docs/REDIS.md lists the commands status and watch need; a user with only those (and no
  // key writes, no scripts) reads the election. The leader uses a separate full user.
  it('status and watch work with the read-only ACL of REDIS.md', async () => {
    const project = uniqueProject('cli-acl');
    const viewer = ['viewer', 'on', '>view-pw', `~{${project}}:*`, 'resetchannels', `&{${project}}:leadership`, '-@all'];
    const commands = ['+hmget', '+pttl', '+get', '+time', '+lrange', '+zrangebyscore', '+multi', '+exec', '+subscribe'];
    const own = await RedisServer.start(10_000, ['--user', ...viewer, ...commands]);
    try {
      const a = await run({ project, nodeId: 'alpha', redisUrl: own.url, ...timing });
      clusters.push(a);
      const url = `redis://viewer:view-pw@127.0.0.1:${own.port}`;
      const r = await runCli(['status', '--redis', url, '--project', project, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, instanceId: 'alpha', revision: a.revision, endpoint: `redis://viewer:***@127.0.0.1:${own.port} ${project}` });
      const watch = cli.spawn(['watch', '--redis', url, '--project', project, '--json']);
      await watch.waitFor((e) => e.event === 'primaryChanged' && e.instanceId === 'alpha', PROCESS_TIMEOUT, 'primaryChanged alpha');
      await a.close();
      await watch.waitFor((e) => e.event === 'primaryLost', 5000, 'primaryLost');
      expect(watch.stderr).not.toContain('failed');
    } finally {
      await cli.stopAll();
      await own.kill();
    }
  });
});
