/**
 * An app that already has a zeromq.js bus (its primary publishes events, every instance
 * subscribes) runs the watcher on that same bus: one endpoint, one port. The primary publishes
 * numbered `app.tick` messages; every instance, the primary included, reads them through the
 * bus and prints them, with its role changes, as JSON lines.
 *
 * Run it in two or three terminals, then stop or kill the one that is primary:
 *   APP_ENDPOINT=tcp://127.0.0.1:47802 npx tsx examples/bus-app.ts
 */
import * as zmq from 'zeromq';
import { Watcher } from 'failover-watch';
import { ZmqBus } from 'failover-watch/transport';

const endpoint = process.env.APP_ENDPOINT ?? 'tcp://127.0.0.1:47802';
const id = process.env.APP_ID ?? `app-${process.pid}`;
const print = (line: Record<string, unknown>): void => console.log(JSON.stringify({ id, ...line }));

const bus = new ZmqBus({
  // A fresh publisher per term (a release closes the old one; see docs/TRANSPORT.md).
  publisher: () => new zmq.XPublisher({ linger: 1000 }),
  subscriber: new zmq.Subscriber({ reconnectInterval: 10, reconnectMaxInterval: 100 }),
  endpoint,
  topics: ['app.'],
});

let seq = 0;
let ticking: ReturnType<typeof setInterval> | undefined;
const watcher = new Watcher(
  {
    endpoint,
    instanceId: id,
    enabled: true,
    heartbeatInterval: 100,
    heartbeatTimeout: 1000,
    rehearsals: 0,
    ...(process.env.APP_WORKDIR === undefined ? {} : { workdir: process.env.APP_WORKDIR }),
    onPromote: ({ epoch }) => {
      print({ event: 'primary', epoch });
      // The app's own traffic, on the same socket as the heartbeats.
      ticking = setInterval(() => {
        const n = ++seq;
        void bus.send(['app.tick', JSON.stringify({ from: id, seq: n })]);
      }, 5);
    },
    onDemote: ({ reason }) => {
      clearInterval(ticking);
      print({ event: 'demoted', reason, lastSent: seq });
    },
  },
  { transport: bus },
);

watcher.on('primaryLost', (e) => print({ event: 'primaryLost', reason: e.reason }));
watcher.on('promotionFailed', (e) => print({ event: 'promotionFailed', detail: String((e as { error?: unknown }).error ?? '') }));

void (async () => {
  for await (const [topic, body] of bus.messages()) {
    if (topic?.toString() === 'app.tick' && body !== undefined) print({ event: 'app', ...(JSON.parse(body.toString()) as object) });
  }
})();

await watcher.start();
print({ event: 'started', role: watcher.role });

process.once('SIGTERM', () => {
  clearInterval(ticking);
  print({ event: 'stopping', lastSent: seq });
  void watcher.shutdown().then(() => {
    print({ event: 'stopped' });
    process.exit(0);
  });
});
