/**
 * The library's metrics and health (failover-watch/metrics, Watcher.health()) on real Watchers
 * in this process over real sockets, with a real prom-client Registry: the metrics follow role,
 * epoch and a failover by cause; health() is exactly what `run --health`'s /healthz answers.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { startHealthServer } from '../../src/cli/supervisor/health-server.js';
import { healthText } from '../../src/health.js';
import { Watcher, type WatcherEvents } from '../../src/index.js';
import { registerMetrics } from '../../src/metrics.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function watcher(endpoint: string, fields: Partial<ConstructorParameters<typeof Watcher>[0]> = {}): Watcher {
  const work = tempWorkdir('fw-metrics-');
  const w = new Watcher({ endpoint, workdir: work.path, heartbeatInterval: 50, heartbeatTimeout: 400, rehearsals: 0, ...fields });
  cleanups.unshift(async () => {
    await w.shutdown();
    work.cleanup();
  });
  return w;
}

/** Resolves on the first `event` whose payload matches; rejects after `timeout` ms. */
function next<E extends keyof WatcherEvents>(w: Watcher, event: E, match: (e: Parameters<WatcherEvents[E]>[0]) => boolean, timeout = 5000) {
  return new Promise<Parameters<WatcherEvents[E]>[0]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching ${event} within ${timeout} ms: ${w.formatStatus()}`)), timeout);
    const fn = (e: Parameters<WatcherEvents[E]>[0]): void => {
      if (!match(e)) return;
      clearTimeout(timer);
      w.off(event, fn as never);
      resolve(e);
    };
    w.on(event, fn as never);
  });
}

/** One sample's value from the exposition text, undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('registerMetrics', () => {
  it('metrics follow role, epoch and a failover by cause', async () => {
    const endpoint = uniqueIpc('fw-metrics');
    const a = watcher(endpoint, { instanceId: 'a', role: 'primary' });
    const b = watcher(endpoint, { instanceId: 'b', role: 'secondary', enabled: true });
    const registry = new Registry();
    const handle = registerMetrics(b, { registry, labels: { app: 'test' } });
    await a.start();
    const following = next(b, 'primaryChanged', (e) => e.instanceId === 'a');
    await b.start();
    await following;

    let text = await registry.metrics();
    expect(sample(text, 'failover_watch_role{app="test",role="secondary"}')).toBe(1);
    expect(sample(text, 'failover_watch_role{app="test",role="primary"}')).toBe(0);
    expect(sample(text, 'failover_watch_epoch{app="test"}')).toBe(a.epoch);
    expect(sample(text, 'failover_watch_failovers_total{app="test",cause="shutdown"}')).toBe(0);
    expect(sample(text, 'failover_watch_primary_suspected{app="test"}')).toBe(0);
    expect(sample(text, 'failover_watch_healthy{app="test"}')).toBe(1);
    expect(sample(text, 'failover_watch_dropped_messages_total{app="test",reason="msgpack"}')).toBe(0);
    expect(sample(text, 'failover_watch_last_takeover_timestamp_seconds{app="test"}')).toBeUndefined();
    const seenBefore = sample(text, 'failover_watch_heartbeats_seen_total{app="test"}');
    expect(seenBefore).toBeGreaterThan(0);

    // A graceful handover: b takes over for the cause `shutdown`, with a higher epoch.
    const epochA = a.epoch;
    const promoted = next(b, 'roleChanged', (c) => c.to === 'primary');
    await a.shutdown();
    const change = await promoted;
    text = await registry.metrics();
    expect(sample(text, 'failover_watch_role{app="test",role="primary"}')).toBe(1);
    expect(sample(text, 'failover_watch_role{app="test",role="secondary"}')).toBe(0);
    expect(sample(text, 'failover_watch_epoch{app="test"}')).toBe(b.epoch);
    expect(b.epoch).toBeGreaterThan(epochA);
    expect(sample(text, 'failover_watch_failovers_total{app="test",cause="shutdown"}')).toBe(1);
    expect(sample(text, 'failover_watch_failovers_total{app="test",cause="silence"}')).toBe(0);
    expect(sample(text, 'failover_watch_last_takeover_timestamp_seconds{app="test"}')).toBe(change.at / 1000);
    const takeover = sample(text, 'failover_watch_last_takeover_seconds{app="test"}');
    expect(takeover).toBeGreaterThanOrEqual(0);
    expect(takeover).toBeLessThan(5);
    expect(text).toContain('# TYPE failover_watch_heartbeats_sent_total counter');

    handle.unregister();
    handle.unregister();
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('a second registration on one registry throws and leaves none', async () => {
    const w = watcher(uniqueIpc('fw-metrics-twice'));
    const registry = new Registry();
    registerMetrics(w, { registry });
    expect(() => registerMetrics(w, { registry })).toThrow(/already been registered.*prefix/);
    const other = registerMetrics(w, { registry, prefix: 'second_' });
    expect(other.names).toContain('second_role');
    other.unregister();
    expect(registry.getSingleMetric('second_role')).toBeUndefined();
    expect(registry.getSingleMetric('failover_watch_role')).toBeDefined();
  });

  it('rejects a bad registry, prefix or label naming the option', () => {
    const w = watcher(uniqueIpc('fw-metrics-bad'));
    const registry = new Registry();
    expect(() => registerMetrics(w, { registry: {} as Registry })).toThrow(/`registry`: expected a prom-client Registry/);
    expect(() => registerMetrics(w, { registry, prefix: 'bad-prefix' })).toThrow(/`prefix`/);
    expect(() => registerMetrics(w, { registry, labels: { role: 'x' } })).toThrow(/`labels.role`/);
    expect(registry.getMetricsAsArray()).toEqual([]);
  });
});

describe('Watcher.health()', () => {
  // One judgement: /healthz of `run --health` answers the watcher's own health(), byte for byte.
  async function healthz(w: Watcher): Promise<{ status: number; text: string }> {
    const server = await startHealthServer('127.0.0.1', 0, { status: () => w.status(), health: () => w.health(), onElection: () => undefined }, { childRestarts: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/healthz`);
      return { status: res.status, text: await res.text() };
    } finally {
      await server.close();
    }
  }

  it('matches /healthz as primary, follower and with no primary', async () => {
    const endpoint = uniqueIpc('fw-health');
    const alone = watcher(uniqueIpc('fw-health-alone'), { instanceId: 'c', role: 'secondary', enabled: false });
    await alone.start();
    expect(alone.health()).toEqual({ ok: false, status: 503, reason: 'no primary heard' });
    expect(await healthz(alone)).toEqual({ status: 503, text: healthText(alone.health()) });

    const a = watcher(endpoint, { instanceId: 'a', role: 'primary' });
    const b = watcher(endpoint, { instanceId: 'b', role: 'secondary', enabled: false });
    await a.start();
    const following = next(b, 'primaryChanged', (e) => e.instanceId === 'a');
    await b.start();
    await following;
    expect(b.health()).toEqual({ ok: true, status: 200, reason: 'following a' });
    expect(await healthz(b)).toEqual({ status: 200, text: 'ok: following a\n' });
    // The primary is healthy once its own heartbeat came back through the endpoint.
    const deadline = Date.now() + 5000;
    while (a.status().ownHeartbeatAgeMs === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(a.health()).toEqual({ ok: true, status: 200, reason: 'primary, heartbeats on time' });
    expect(await healthz(a)).toEqual({ status: 200, text: 'ok: primary, heartbeats on time\n' });

    // The primary leaves; b (failover disabled) considers it lost: unhealthy.
    const lost = next(b, 'primaryLost', () => true);
    await a.shutdown();
    await lost;
    expect(b.health()).toEqual({ ok: false, status: 503, reason: 'primary lost' });
    expect(await healthz(b)).toEqual({ status: 503, text: 'unhealthy: primary lost\n' });
  });
});
