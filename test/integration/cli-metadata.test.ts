/**
 * `run --metadata KEY=VALUE` and the primary's metadata in `status` and `watch`, as real OS
 * processes (`node bin/failover-watch.js`) over ZeroMQ and against a real redis-server: the
 * metadata a `run` node announces is what `status` prints (text and --json) and what `watch`
 * reports with primaryChanged after a takeover; a bad pair is a usage error naming the key.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../harness/cli-process.js';
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { run } from '../../src/redis.js';
import { cleanups, cli, isPrimary } from './cli-run-process.js';

/** Bound on one CLI process (tsx compiles the sources on first use). */
const PROCESS_TIMEOUT = 20_000;
/** The supervised command: runs until signalled. */
const COMMAND = [process.execPath, '-e', 'setInterval(() => {}, 1000);'];

describe('run --metadata over ZeroMQ', () => {
  it('status and watch show the primary metadata', { timeout: 90_000 }, async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const endpoint = uniqueIpc('fw-climeta');
    const node = (id: string, ...metadata: string[]) =>
      cli(['run', '-e', endpoint, '--id', id, '--workdir', work.path, '--interval', '50', '--timeout', '5000', '--json', ...metadata.flatMap((m) => ['--metadata', m]), '--', ...COMMAND]);
    const a = node('a', 'port=7001', 'zone=a');
    await a.waitFor(isPrimary, PROCESS_TIMEOUT, 'a primary');
    expect(a.events[0]).toMatchObject({ event: 'started', metadata: { port: '7001', zone: 'a' } });

    const json = await runCli(['status', '-e', endpoint, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, instanceId: 'a', metadata: { port: '7001', zone: 'a' } });
    const text = await runCli(['status', '-e', endpoint]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^primary a \(pid \d+ on .+\), epoch \d+, seq \d+, heartbeat every 50 ms; metadata port=7001 zone=a\n$/);

    const watch = cli(['watch', '-e', endpoint, '--json']);
    const first = await watch.waitFor((e) => e.event === 'primaryChanged', PROCESS_TIMEOUT, 'watch sees a');
    expect(first).toMatchObject({ instanceId: 'a', metadata: { port: '7001', zone: 'a' } });
    const b = node('b', 'port=7002');
    await b.waitFor((e) => e.event === 'roleChanged' && e.to === 'secondary', PROCESS_TIMEOUT, 'b secondary');
    a.term();
    const takeover = await watch.waitFor((e) => e.event === 'primaryChanged' && e.instanceId === 'b', 10_000, 'watch sees b');
    expect(takeover).toMatchObject({ previous: 'a', metadata: { port: '7002' } });
    expect((await a.exited).code).toBe(0);
  });

  it('a bad --metadata is exit 2 naming the key', { timeout: 60_000 }, async () => {
    const endpoint = uniqueIpc('fw-climeta-bad');
    const cases: Array<[string[], RegExp]> = [
      [['bad key=1'], /^failover-watch: --metadata bad key: expected a key of 1-64 characters of \[A-Za-z0-9._-\], received "bad key"; see --help$/],
      [['port'], /^failover-watch: --metadata expects KEY=VALUE, received "port"; see --help$/],
      [['port=1', 'port=2'], /^failover-watch: --metadata port is given twice; see --help$/],
      [[`url=${'u'.repeat(300)}`], /^failover-watch: --metadata url: expected a value of at most 256 bytes of UTF-8, received "300 bytes"; see --help$/],
    ];
    const results = await Promise.all(cases.map(([pairs]) => runCli(['run', '-e', endpoint, ...pairs.flatMap((m) => ['--metadata', m]), '--', 'true'])));
    for (const [i, r] of results.entries()) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim()).toMatch((cases[i] as [string[], RegExp])[1]);
    }
  });
});

const skip = redisSkipReason();
let server: RedisServer;
beforeAll(async () => {
  if (skip === undefined) server = await RedisServer.start();
});
afterAll(async () => {
  await server?.kill();
});

describe.skipIf(skip !== undefined)('run --metadata over Redis', () => {
  it('status and watch --redis show the leader metadata', { timeout: 90_000 }, async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const project = uniqueProject('cli-meta');
    const node = (id: string, priority: number, ...metadata: string[]) =>
      cli([
        'run', '--redis', server.url, '--project', project, '--id', id, '--workdir', work.path, '--strategy', 'priority', '--priority', String(priority),
        '--lease-ttl', '3000', '--json', ...metadata.flatMap((m) => ['--metadata', m]), '--', ...COMMAND,
      ]);
    const a = node('a', 1, 'port=7001', 'zone=a');
    await a.waitFor(isPrimary, PROCESS_TIMEOUT, 'a leader');
    expect(a.events[0]).toMatchObject({ event: 'started', backend: 'redis', metadata: { port: '7001', zone: 'a' } });
    const b = node('b', 2, 'port=7002');
    await b.waitFor((e) => e.event === 'roleChanged' && e.to === 'secondary', PROCESS_TIMEOUT, 'b follower');

    const json = await runCli(['status', '--redis', server.url, '--project', project, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const st = JSON.parse(json.stdout) as { liveNodes: Array<{ nodeId: string; metadata: unknown }> };
    expect(st).toMatchObject({ ok: true, instanceId: 'a', metadata: { port: '7001', zone: 'a' }, metadataDropped: 0 });
    expect(st.liveNodes.map((n) => [n.nodeId, n.metadata])).toEqual([
      ['a', { port: '7001', zone: 'a' }],
      ['b', { port: '7002' }],
    ]);
    const text = await runCli(['status', '--redis', server.url, '--project', project]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^leader a of ${project}, revision \\d+ since \\S+Z, lease \\d+ ms left; metadata port=7001 zone=a; live: a \\(priority 1\\) \\*, b \\(priority 2\\)\\n$`));

    const watch = cli(['watch', '--redis', server.url, '--project', project, '--json']);
    const first = await watch.waitFor((e) => e.event === 'primaryChanged', PROCESS_TIMEOUT, 'watch sees a');
    expect(first).toMatchObject({ instanceId: 'a', metadata: { port: '7001', zone: 'a' } });
    a.term();
    const takeover = await watch.waitFor((e) => e.event === 'primaryChanged' && e.instanceId === 'b', 10_000, 'watch sees b');
    expect(takeover).toMatchObject({ previous: 'a', metadata: { port: '7002' } });
    expect((await a.exited).code).toBe(0);
  });

  it('watch --redis reports metadata changes; drops bad ones', { timeout: 60_000 }, async () => {
    const project = uniqueProject('cli-meta-change');
    const leader = await run({ project, nodeId: 'lib', redisUrl: server.url, leaseTTL: 10_000, maxDrift: 5000, tickInterval: 1000, metadata: { port: '1' } });
    cleanups.push(() => leader.close().catch(() => undefined));
    const watch = cli(['watch', '--redis', server.url, '--project', project, '--json']);
    await watch.waitFor((e) => e.event === 'primaryChanged' && (e.metadata as { port?: string }).port === '1', PROCESS_TIMEOUT, 'watch sees lib');
    leader.setMetadata({ port: '2' });
    const changed = await watch.waitFor((e) => e.event === 'primaryMetadataChanged', 5000, 'the change');
    expect(changed).toMatchObject({ instanceId: 'lib', epoch: leader.revision, metadata: { port: '2' } });

    // Written by hand, breaking the rules: status reports it as null and counts it; watch keeps the last good.
    const raw = new Redis(server.url);
    cleanups.push(() => void raw.disconnect());
    await raw.hset(`{${project}}:metadata`, 'lib', '{"port":2}');
    await raw.publish(`{${project}}:leadership`, JSON.stringify({ type: 'metadata', nodeId: 'lib' }));
    const st = await runCli(['status', '--redis', server.url, '--project', project, '--json']);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ instanceId: 'lib', metadata: null, metadataDropped: 1 });
    leader.setMetadata({ port: '3' });
    const third = await watch.waitFor((e) => e.event === 'primaryMetadataChanged' && (e.metadata as { port?: string }).port === '3', 5000, 'the next change');
    expect(third).toMatchObject({ instanceId: 'lib' });
    expect(watch.events.filter((e) => e.event === 'primaryMetadataChanged').map((e) => e.metadata)).toEqual([{ port: '2' }, { port: '3' }]);
  });
});
