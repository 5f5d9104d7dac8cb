/**
 * Where does the new primary serve? Every instance runs a small TCP service on a port the OS
 * picks; the primary announces `{ port }` as application metadata, and each follower connects
 * its client to the port the current primary advertises, reconnecting after every takeover,
 * whether the old primary quit, crashed or was killed.
 *
 * Run it in three terminals, then kill the first one (Ctrl-C, or `kill -9` its pid):
 *   npx tsx examples/metadata-follower.ts
 * Across machines the same works with failover-watch/redis (`metadata` option, same events);
 * advertise a host as well as a port there: `{ host: '10.0.0.5', port: '7001' }`.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { Watcher } from 'failover-watch';

const instanceId = process.env.INSTANCE_ID ?? `instance-${process.pid}`;

// 1. This instance's own service; only the primary's is used, but every instance has one ready.
const server = createServer((socket) => {
  socket.on('error', () => undefined);
  socket.end(`hello from ${instanceId}\n`);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as { port: number }).port;
console.log(`serving on 127.0.0.1:${port} as ${instanceId}`);

/** The follower's client connection to the primary's service. */
let client: Socket | undefined;

// 2. The election; the metadata travels with the primary's heartbeats.
const watcher = new Watcher({
  endpoint: process.env.APP_ENDPOINT ?? 'ipc://@metadata-follower-example',
  instanceId,
  enabled: true,
  priority: Number(process.env.PRIORITY ?? 1),
  heartbeatInterval: 200,
  heartbeatTimeout: 1000,
  metadata: { port: String(port) },
  onPromote: async ({ epoch, reason }) => {
    client?.destroy();
    client = undefined;
    console.log(`primary (epoch ${epoch}, ${reason}): clients connect to port ${port}`);
  },
});

// 3. A follower's client goes wherever the primary says it serves.
function connectTo(primary: string, metadata: Readonly<Record<string, string>>): void {
  const target = Number(metadata.port);
  if (!Number.isInteger(target) || target <= 0 || target > 65535) {
    console.log(`following ${primary}: it advertises no port`);
    return;
  }
  client?.destroy();
  console.log(`following ${primary}: connecting to its advertised port ${target}`);
  const socket = createConnection({ host: '127.0.0.1', port: target });
  client = socket;
  let greeting = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (greeting += chunk));
  socket.on('end', () => console.log(`connected to ${primary} at port ${target}: ${greeting.trim()}`));
  socket.on('error', (error) => console.log(`could not reach ${primary} at port ${target}: ${error.message}`));
}
watcher.on('primaryChanged', (p) => connectTo(p.instanceId, p.metadata));
watcher.on('primaryMetadataChanged', (p) => connectTo(p.instanceId, p.metadata));

await watcher.start();
console.log(`started as ${watcher.role}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    client?.destroy();
    server.close();
    void watcher.shutdown().then(() => console.log('stopped'));
  });
}
