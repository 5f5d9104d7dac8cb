/**
 * An application that embeds the Watcher and serves its own /metrics (Prometheus) and /healthz,
 * with node:http, the way `failover-watch run --health` does for a supervised command.
 *
 * prom-client is an optional peer dependency of failover-watch: install it next to it
 * (`npm install prom-client`). Run it in two terminals, scrape, and stop the first one:
 *   HTTP_PORT=9464 npx tsx examples/metrics-app.ts
 *   curl -s localhost:9464/metrics; curl -si localhost:9464/healthz
 */
import { createServer } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { Watcher } from 'failover-watch';
import { registerMetrics } from 'failover-watch/metrics';

const watcher = new Watcher({
  endpoint: process.env.APP_ENDPOINT ?? 'ipc://@my-metrics-app',
  enabled: true,
  heartbeatInterval: 500,
  heartbeatTimeout: 2000,
  onPromote: async ({ epoch, reason }) => console.log(`primary (epoch ${epoch}, ${reason})`),
});

watcher.on('primaryChanged', (p) => console.log(`following ${p.instanceId}`));

// The application's registry: its own metrics, the process's, and the watcher's.
const registry = new Registry();
collectDefaultMetrics({ register: registry });
const metrics = registerMetrics(watcher, { registry, labels: { app: 'my-metrics-app' } });

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    // Exactly what `failover-watch run --health` answers: 200 or 503, and why.
    const health = watcher.health();
    res.writeHead(health.status, { 'content-type': 'text/plain' }).end(`${health.ok ? 'ok' : 'unhealthy'}: ${health.reason}\n`);
  } else if (req.url === '/metrics') {
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
  } else {
    res.writeHead(404).end();
  }
});
await new Promise<void>((resolve) => server.listen(Number(process.env.HTTP_PORT ?? 0), '127.0.0.1', resolve));
const address = server.address();
console.log(`serving http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : '?'}/metrics and /healthz`);

await watcher.start();
console.log(`started as ${watcher.role}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void watcher.shutdown().then(() => {
      metrics.unregister();
      server.close();
      console.log('stopped');
    });
  });
}
