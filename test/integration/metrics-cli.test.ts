/**
 * `failover-watch run --health` over Redis serves the library's metrics (registered once the
 * election exists, after start) and the election's own health(), as a real process.
 */
import { describe, expect, it } from 'vitest';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { cleanups, cli, isPrimary } from './cli-run-process.js';

const skip = redisSkipReason();
describe.skipIf(skip !== undefined)('run --redis --health', () => {
  it('serves the Redis election\'s metrics and health', async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.kill());
    const node = cli(['run', '--redis', server.url, '--project', uniqueProject(), '--id', 'r1', '--lease-ttl', '1000', '--health', '127.0.0.1:0', '--json', '--', process.execPath, '-e', 'setInterval(() => {}, 1000)']);
    const port = (await node.waitFor((e) => e.event === 'healthListening', 20_000)).port as number;
    await node.waitFor(isPrimary, 20_000, 'r1 leader');
    const healthz = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect({ status: healthz.status, text: await healthz.text() }).toEqual({ status: 200, text: 'ok: leader, lease refreshed\n' });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('failover_watch_role{role="primary"} 1');
    expect(metrics).toContain('failover_watch_healthy 1');
    expect(metrics).toContain('failover_watch_child_restarts_total 0');
    expect(metrics).toMatch(/failover_watch_last_takeover_timestamp_seconds \d/);
    expect(metrics).toMatch(/failover_watch_heartbeats_sent_total [1-9]/);
  });
});
