/**
 * One process of the `idle-heartbeat` scenario (bench/scenarios/idle-heartbeat.ts): a watcher at
 * rest, or a bare zeromq.js socket doing the same heartbeat traffic without failover-watch.
 * argv[2] is a JSON {@link IdleNodeConfig}. Reports `{ type: 'ready' }` to the parent once it is
 * at rest (a secondary: once it follows the primary; a subscriber: once it received a
 * heartbeat), answers `{ cmd: 'status' }` with `{ type: 'status', sent, received }`, and ends
 * when the parent's IPC channel closes. Nothing else runs in it: no timer, no monitor, no
 * logger, so its CPU is the socket's or the watcher's own.
 *
 * Modes:
 * - `watcher-primary` / `watcher-secondary`: a `Watcher` (the library's defaults but the given
 *   interval and timeout);
 * - `bare-pub`: a zeromq.js `Publisher` bound to the endpoint, sending the heartbeat a primary
 *   sends (same topic, same msgpack map, seq and sentAt updated) every interval from a
 *   `setInterval`;
 * - `bare-sub`: a `Subscriber` connected to the endpoint, subscribed to `instance.`, reading and
 *   msgpack-decoding each message;
 * - `bare-pair`: what a primary needs at the least: an `XPublisher` bound to the endpoint (it
 *   hears its subscribers come and go) plus its own `Subscriber` connected to it, reading its own
 *   heartbeats back, with the same sends as `bare-pub`.
 *
 * @module
 */
import { hostname } from 'node:os';
import { Packr, Unpackr } from 'msgpackr/pack';
import * as zmq from 'zeromq';
import { Watcher } from '../../src/index.js';

export type IdleNodeMode = 'watcher-primary' | 'watcher-secondary' | 'bare-pub' | 'bare-sub' | 'bare-pair';

export interface IdleNodeConfig {
  readonly mode: IdleNodeMode;
  readonly endpoint: string;
  readonly instanceId: string;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  /** For watchers. */
  readonly workdir?: string;
  /** For watchers: the `rehearsals` option (library default when unset). */
  readonly rehearsals?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as IdleNodeConfig;
const send = (type: string, data: Record<string, unknown> = {}): void => {
  if (process.connected) process.send?.({ type, ...data });
};

let sent = 0;
let received = 0;
const cleanups: Array<() => Promise<void> | void> = [];

// The same encoder settings as src/protocol/codec.ts, and the map a primary sends.
const packr = new Packr({ useRecords: false, moreTypes: false, useFloat32: 0 });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number', structuredClone: false });
const TOPIC = Buffer.from('instance.heartbeat');
const host = hostname();

function heartbeat(): [Buffer, Buffer] {
  sent++;
  return [
    TOPIC,
    packr.pack({
      version: 1,
      instanceId: config.instanceId,
      epoch: 1,
      seq: sent,
      sentAt: performance.timeOrigin + performance.now(),
      pid: process.pid,
      host,
      heartbeatInterval: config.heartbeatInterval,
      priority: 100,
      procStart: 1,
      members: [[`${config.instanceId}-peer`, 100]],
    }),
  ];
}

async function read(sub: zmq.Subscriber, onFirst?: () => void): Promise<void> {
  try {
    for await (const frames of sub) {
      const payload = frames[1];
      if (payload !== undefined) unpackr.unpack(payload);
      if (++received === 1) onFirst?.();
    }
  } catch {
    // Closed.
  }
}

function subscriber(): zmq.Subscriber {
  const sub = new zmq.Subscriber({ linger: 0, reconnectInterval: 10, reconnectMaxInterval: 100 });
  sub.subscribe('instance.');
  sub.connect(config.endpoint);
  cleanups.push(() => sub.close());
  return sub;
}

async function publisher(pub: zmq.Publisher | zmq.XPublisher): Promise<void> {
  await pub.bind(config.endpoint);
  let sending = false;
  const timer = setInterval(() => {
    if (sending) return;
    sending = true;
    void pub.send(heartbeat()).finally(() => {
      sending = false;
    });
  }, config.heartbeatInterval);
  cleanups.push(() => clearInterval(timer), () => pub.close());
  // An XPUB reports its subscribers' (un)subscriptions: keep a receive waiting, as a primary does.
  if (pub instanceof zmq.XPublisher) {
    void (async () => {
      try {
        for await (const [frame] of pub) void frame;
      } catch {
        // Closed.
      }
    })();
  }
}

async function main(): Promise<void> {
  switch (config.mode) {
    case 'watcher-primary':
    case 'watcher-secondary': {
      const watcher = new Watcher({
        endpoint: config.endpoint,
        instanceId: config.instanceId,
        workdir: config.workdir,
        role: config.mode === 'watcher-primary' ? 'primary' : 'secondary',
        heartbeatInterval: config.heartbeatInterval,
        heartbeatTimeout: config.heartbeatTimeout,
        ...(config.rehearsals === undefined ? {} : { rehearsals: config.rehearsals }),
      });
      cleanups.push(() => watcher.shutdown());
      const follows = new Promise<void>((resolve) => watcher.once('primaryChanged', () => resolve()));
      await watcher.start();
      if (config.mode === 'watcher-secondary') await follows;
      process.on('message', (m: { cmd?: string }) => {
        if (m.cmd !== 'status') return;
        const st = watcher.status();
        send('status', { sent: st.heartbeatsSent, received: st.heartbeatsSeen, role: st.role, rehearsals: st.rehearsals, stalls: st.stalls });
      });
      send('ready');
      return;
    }
    case 'bare-pub':
      await publisher(new zmq.Publisher({ linger: 0 }));
      break;
    case 'bare-pair': {
      await publisher(new zmq.XPublisher({ linger: 0, sendTimeout: 0 }));
      void read(subscriber());
      break;
    }
    case 'bare-sub': {
      const first = new Promise<void>((resolve) => {
        void read(subscriber(), resolve);
      });
      await first;
      break;
    }
  }
  process.on('message', (m: { cmd?: string }) => {
    if (m.cmd === 'status') send('status', { sent, received });
  });
  send('ready');
}

process.on('disconnect', () => {
  void Promise.allSettled(cleanups.map((c) => c())).finally(() => process.exit(0));
});
main().catch((error: unknown) => {
  process.stderr.write(`idle-node ${config.mode}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
