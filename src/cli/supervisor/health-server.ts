/**
 * The `--health HOST:PORT` endpoint of `failover-watch run`:
 * - `GET /healthz`: 200 while this node is healthy in its role, 503 otherwise;
 * - `GET /status`: `status()` as JSON;
 * - `GET /metrics`: Prometheus metrics (prom-client).
 *
 * Healthy means: a primary whose own heartbeats come back through the endpoint on time; a
 * secondary that hears a live primary, or is taking over. A wedged primary answers 503 (or not
 * at all: its event loop serves this endpoint too), so it is visible from outside. So does a
 * primary whose filesystem socket file was taken by another process (`endpointStolen`): nodes
 * that connect from then on do not reach it.
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WatcherStatus } from '../../watcher.js';

/** Whether a node is healthy in its role, and why not. */
export function judgeHealth(st: WatcherStatus): { healthy: boolean; reason: string } {
  if (st.role === 'primary') {
    const limit = Math.min(2 * st.heartbeatInterval + 250, st.heartbeatTimeout);
    if (st.endpointStolen !== undefined) {
      return { healthy: false, reason: `endpoint stolen: ${st.endpointStolen.detail}; nodes connecting now do not reach this primary` };
    }
    if (st.ownHeartbeatAgeMs === undefined) return { healthy: false, reason: 'no own heartbeat seen yet' };
    if (st.ownHeartbeatAgeMs > limit) {
      return { healthy: false, reason: `own heartbeat ${Math.round(st.ownHeartbeatAgeMs)} ms old (limit ${limit} ms)` };
    }
    return { healthy: true, reason: 'primary, heartbeats on time' };
  }
  if (st.role === 'secondary') {
    if (st.phase === 'acquiring' || st.phase === 'claiming' || st.phase === 'promoting') {
      return { healthy: true, reason: 'taking over' };
    }
    if (st.primary !== undefined && !st.primarySuspected) return { healthy: true, reason: `following ${st.primary.instanceId}` };
    return { healthy: false, reason: st.primarySuspected ? 'primary lost' : 'no primary heard' };
  }
  return { healthy: false, reason: st.role };
}

/** Counters the supervisor feeds, besides what status() has. */
export interface SupervisorMetrics {
  failovers: Record<string, number>;
  lastTakeoverMs: number | undefined;
  childRestarts: number;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/** What the server reads on each request. */
export interface HealthSource {
  status(): unknown;
  health(): { healthy: boolean; reason: string };
  metrics(): {
    role: string;
    epoch: number;
    heartbeatsSent: number;
    heartbeatsSeen: number;
    primarySuspected: boolean;
    dropped: Record<string, number>;
  };
}

/** Starts the server; resolves once it listens. */
export async function startHealthServer(
  host: string,
  port: number,
  source: HealthSource,
  metrics: SupervisorMetrics,
): Promise<HealthServer> {
  const prom = await import('prom-client');
  const registry = new prom.Registry();
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: import('prom-client').Gauge) => void) =>
    new prom.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this);
      },
    });
  gauge('failover_watch_role', 'Current role of this node (1 for the current one).', ['role'], (g) => {
    const current = source.metrics().role;
    for (const role of ['starting', 'secondary', 'primary', 'stopped']) g.set({ role }, current === role ? 1 : 0);
  });
  gauge('failover_watch_epoch', 'Own epoch while primary, otherwise the highest epoch known.', [], (g) => g.set(source.metrics().epoch));
  gauge('failover_watch_heartbeats_sent_total', 'Heartbeats this node published (Redis: lease operations).', [], (g) => g.set(source.metrics().heartbeatsSent));
  gauge('failover_watch_heartbeats_seen_total', 'Heartbeats this node received from a primary.', [], (g) => g.set(source.metrics().heartbeatsSeen));
  gauge('failover_watch_failovers_total', 'Times this node became primary, by cause.', ['cause'], (g) => {
    for (const [cause, n] of Object.entries(metrics.failovers)) g.set({ cause }, n);
  });
  gauge('failover_watch_last_takeover_seconds', 'From noticing the primary was lost to this node becoming primary, last takeover.', [], (g) => {
    if (metrics.lastTakeoverMs !== undefined) g.set(metrics.lastTakeoverMs / 1000);
  });
  gauge('failover_watch_dropped_messages_total', 'Invalid messages dropped, by reason.', ['reason'], (g) => {
    for (const [reason, n] of Object.entries(source.metrics().dropped)) g.set({ reason }, n);
  });
  gauge('failover_watch_primary_suspected', '1 while this secondary considers the primary lost.', [], (g) => g.set(source.metrics().primarySuspected ? 1 : 0));
  gauge('failover_watch_child_restarts_total', 'Restarts of the supervised command (--on-exit restart).', [], (g) => g.set(metrics.childRestarts));
  gauge('failover_watch_healthy', '1 while /healthz answers 200.', [], (g) => g.set(source.health().healthy ? 1 : 0));

  const server: Server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/healthz') {
      const { healthy, reason } = source.health();
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(`${healthy ? 'ok' : 'unhealthy'}: ${reason}\n`);
      return;
    }
    if (url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(source.status())}\n`);
      return;
    }
    if (url === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /status or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
