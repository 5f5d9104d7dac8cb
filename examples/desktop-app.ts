/**
 * Several instances of one desktop or agent app on a machine: the first instance owns the shared
 * resources (here, pretend: a local database and a tray icon); the others follow and take over
 * when it goes, whether it quits, crashes or is killed.
 *
 * Run it in two terminals and stop the first one:
 *   npx tsx examples/desktop-app.ts
 */
import { Watcher } from 'failover-watch';

const watcher = new Watcher({
  // Every instance of the app uses the same endpoint: a Linux abstract socket (no file to clean up).
  // On macOS use a loopback port instead, e.g. 'tcp://127.0.0.1:47801'.
  endpoint: process.env.APP_ENDPOINT ?? 'ipc://@my-desktop-app',
  enabled: true,
  heartbeatInterval: 500,
  heartbeatTimeout: 2000,
  onPromote: async ({ epoch, reason }) => {
    console.log(`primary (epoch ${epoch}, ${reason}): opening the shared database, showing the tray icon`);
  },
  onDemote: async ({ reason }) => {
    console.log(`no longer primary (${reason}): closing the shared database`);
  },
});

watcher.on('roleChanged', (change) => console.log(`role: ${change.from} -> ${change.to}`));
watcher.on('primaryChanged', (p) => console.log(`following the primary instance ${p.instanceId} (pid ${p.pid})`));

await watcher.start();
console.log(`started as ${watcher.role}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // Hands over at once: a secondary instance takes over in milliseconds.
    void watcher.shutdown().then(() => console.log('stopped'));
  });
}
