/**
 * failover-watch/metrics and health() on the Redis election, against a real redis-server with a
 * real prom-client Registry: a standby's metrics show the handover when the leader closes.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { registerMetrics } from '../../src/metrics.js';
import { run, type Cluster, type RoleChange } from '../../src/redis.js';

const skip = redisSkipReason();
let server: RedisServer;
beforeAll(async () => {
  if (skip === undefined) server = await RedisServer.start();
});
afterAll(async () => {
  await server?.kill();
});

function nextChange(cluster: Cluster, pred: (c: RoleChange) => boolean, timeout = 5000): Promise<RoleChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching roleChanged within ${timeout} ms (${cluster.formatStatus()})`)), timeout);
    const on = (c: RoleChange): void => {
      if (!pred(c)) return;
      clearTimeout(timer);
      cluster.off('roleChanged', on);
      resolve(c);
    };
    cluster.on('roleChanged', on);
  });
}

const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe.skipIf(skip !== undefined)('registerMetrics on a Redis election', () => {
  it('a standby\'s metrics and health show the handover', async () => {
    const project = uniqueProject();
    const fast = { leaseTTL: 1000, maxDrift: 500, tickInterval: 100 } as const;
    const leader = await run({ project, redisUrl: server.url, nodeId: 'l1', ...fast });
    const standby = await run({ project, redisUrl: server.url, nodeId: 's1', ...fast });
    try {
      expect(leader.role).toBe('primary');
      const registry = new Registry();
      registerMetrics(standby, { registry });
      let text = await registry.metrics();
      expect(sample(text, 'failover_watch_role{role="secondary"}')).toBe(1);
      expect(sample(text, 'failover_watch_healthy')).toBe(1);
      // Lease operations go on between the scrape and the status() read: at most that many.
      const sent = sample(text, 'failover_watch_heartbeats_sent_total');
      expect(sent).toBeGreaterThan(0);
      expect(sent).toBeLessThanOrEqual(standby.status().redis.operations);
      expect(text).not.toContain('failover_watch_dropped_messages_total{'); // ZeroMQ only
      expect(standby.health()).toEqual({ ok: true, status: 200, reason: 'standby of l1' });

      const promoted = nextChange(standby, (c) => c.to === 'primary');
      await leader.close();
      const change = await promoted;
      text = await registry.metrics();
      expect(sample(text, 'failover_watch_role{role="primary"}')).toBe(1);
      expect(sample(text, 'failover_watch_epoch')).toBe(standby.status().epoch);
      expect(sample(text, `failover_watch_failovers_total{cause="${change.reason}"}`)).toBe(1);
      expect(change.reason).toBe('handover');
      expect(sample(text, 'failover_watch_last_takeover_timestamp_seconds')).toBe(change.at / 1000);
      expect(standby.health()).toEqual({ ok: true, status: 200, reason: 'leader, lease refreshed' });
    } finally {
      await leader.close().catch(() => undefined);
      await standby.close();
    }
  });
});
