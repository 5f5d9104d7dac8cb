/**
 * The `--health HOST:PORT` endpoint of `failover-watch run`:
 * - `GET /healthz`: 200 while this node is healthy in its role, 503 otherwise;
 * - `GET /status`: `status()` as JSON;
 * - `GET /metrics`: Prometheus metrics: the library's (`failover-watch/metrics`) plus
 *   `failover_watch_child_restarts_total`.
 *
 * `/healthz` answers the election's own `health()` (src/health.ts: one judgement for the library
 * and the CLI). A wedged primary answers 503 (or not at all: its event loop serves this endpoint
 * too), so it is visible from outside.
 *
 * prom-client is an optional peer dependency of failover-watch. When it is not installed,
 * `/healthz` and `/status` are served all the same, `/metrics` answers 501 saying how to install
 * it, and the supervisor is told once at startup (`warn`).
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { healthText, type Health } from '../../health.js';
import type { MetricsSource } from '../../metrics.js';

/** Counters the supervisor feeds, besides what the election's metrics have. */
export interface SupervisorMetrics {
  childRestarts: number;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/** What the server reads on each request. */
export interface HealthSource {
  status(): unknown;
  health(): Health;
  /** Calls `fn` with the election once it exists (at once for ZeroMQ; after start() for Redis). */
  onElection(fn: (election: MetricsSource) => void): void;
}

/** Loads `failover-watch/metrics` (and with it prom-client); replaced in tests. @internal */
export type MetricsLoader = () => Promise<typeof import('../../metrics.js')>;

/** What `/metrics` answers when prom-client cannot be loaded. */
export const PROM_CLIENT_MISSING =
  '/metrics needs prom-client, an optional peer dependency of failover-watch: install it next to failover-watch (npm install prom-client)';

/** Starts the server; resolves once it listens. */
export async function startHealthServer(
  host: string,
  port: number,
  source: HealthSource,
  metrics: SupervisorMetrics,
  warn: (text: string) => void = () => undefined,
  loadMetrics: MetricsLoader = () => import('../../metrics.js'),
): Promise<HealthServer> {
  let registry: import('prom-client').Registry | undefined;
  let metricsHandle: import('../../metrics.js').MetricsHandle | undefined;
  let closed = false;
  try {
    const [lib, prom] = await Promise.all([loadMetrics(), import('prom-client')]);
    const reg = new prom.Registry();
    registry = reg;
    new prom.Counter({
      name: 'failover_watch_child_restarts_total',
      help: 'Restarts of the supervised command (--on-exit restart).',
      registers: [reg],
      collect() {
        this.reset();
        this.inc(metrics.childRestarts);
      },
    });
    source.onElection((election) => {
      if (!closed) metricsHandle = lib.registerMetrics(election, { registry: reg });
    });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    warn(PROM_CLIENT_MISSING);
  }

  const server: Server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/healthz') {
      const health = source.health();
      res.writeHead(health.status, { 'content-type': 'text/plain; charset=utf-8' }).end(healthText(health));
      return;
    }
    if (url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(source.status())}\n`);
      return;
    }
    if (url === '/metrics') {
      if (registry === undefined) {
        res.writeHead(501, { 'content-type': 'text/plain; charset=utf-8' }).end(`${PROM_CLIENT_MISSING}\n`);
        return;
      }
      const reg = registry;
      reg.metrics().then(
        (text) => res.writeHead(200, { 'content-type': reg.contentType }).end(text),
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
        // The metrics' election listeners go with the server (an election that starts later
        // registers nothing).
        closed = true;
        metricsHandle?.unregister();
        metricsHandle = undefined;
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
