/**
 * A flooding peer in its own OS process (run as another user in the two-user tests): it connects
 * to a running cluster's endpoint and, for a bounded time, either subscribes distinct presence
 * topics as fast as it can, or opens and drops raw connections at a set rate. It reports what it
 * sent to the parent as `{ type: 'report', ... }` and exits.
 *
 * argv[2] is a JSON {@link FloodConfig}. Bounded in time (`durationMs`) and in count (`maxTopics`).
 *
 * @module
 */
import { connect } from 'node:net';
import * as zmq from 'zeromq';

export interface FloodConfig {
  readonly endpoint: string;
  /**
   * `topics`: distinct presence subscriptions through ZeroMQ sockets; `raw-topics`: the same
   * written as ZMTP 3.0 frames straight onto the connection, as fast as it takes them (far faster
   * than a primary can read them); `churn`: raw connections opened and closed.
   */
  readonly mode: 'topics' | 'raw-topics' | 'churn';
  readonly durationMs: number;
  /** topics: connections to subscribe on, in parallel. */
  readonly connections?: number;
  /** topics: stop after this many subscriptions in all. */
  readonly maxTopics?: number;
  /** churn: connections opened per second. */
  readonly perSecond?: number;
}

export interface FloodReport {
  readonly subscriptions: number;
  readonly connectionsOpened: number;
  readonly connectErrors: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as FloodConfig;
const report = { subscriptions: 0, connectionsOpened: 0, connectErrors: 0 };
const send = (type: string, data: Record<string, unknown> = {}): void => {
  if (process.connected) process.send?.({ type, at: Date.now(), ...data });
};

async function topics(until: number): Promise<void> {
  const max = config.maxTopics ?? 2_000_000;
  const connections = Math.max(1, config.connections ?? 1);
  await Promise.all(
    Array.from({ length: connections }, async (_, c) => {
      const xsub = new zmq.XSubscriber({ linger: 0, sendHighWaterMark: 100_000 });
      xsub.connect(config.endpoint);
      let n = 0;
      while (Date.now() < until && report.subscriptions < max) {
        for (let k = 0; k < 500 && report.subscriptions < max; k++, n++) {
          try {
            await xsub.send(Buffer.from(`\u0001presence.1.flood-${c}-${n}`));
            report.subscriptions++;
          } catch {
            // dropped at the high-water mark
          }
        }
        await new Promise((r) => setImmediate(r));
      }
      send('flooded', { connection: c });
      // Keep the connection (and what it subscribed) until the end of the attack.
      while (Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      xsub.close();
    }),
  );
}

/**
 * A ZMTP 3.0 greeting (NULL mechanism, not as-server) and a READY command for a SUB socket,
 * followed by nothing: what a SUB sends before its subscriptions (ZMTP 3.0, rfc.zeromq.org/spec/23).
 */
function zmtpHello(): Buffer {
  const greeting = Buffer.alloc(64);
  greeting.set([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0], 0);
  greeting.write('NULL', 12, 'latin1');
  const name = Buffer.from('Socket-Type', 'latin1');
  const value = Buffer.from('SUB', 'latin1');
  const body = Buffer.concat([Buffer.from([5]), Buffer.from('READY', 'latin1'), Buffer.from([name.length]), name, Buffer.alloc(4), value]);
  body.writeUInt32BE(value.length, 1 + 5 + 1 + name.length);
  return Buffer.concat([greeting, Buffer.from([0x04, body.length]), body]);
}

/** `count` subscription messages (ZMTP 3.0: a short final frame, 0x01 + topic) for connection `c` from `first`. */
function subscriptionFrames(c: number, first: number, count: number): Buffer {
  const parts: Buffer[] = [];
  for (let n = first; n < first + count; n++) {
    const topic = Buffer.from(`\u0001presence.1.raw-${c}-${n}`, 'latin1');
    parts.push(Buffer.from([0, topic.length]), topic);
  }
  return Buffer.concat(parts);
}

/**
 * Distinct subscriptions written straight onto raw connections, respecting only the socket's
 * backpressure; every connection is closed at `until`, written out or not.
 */
async function rawTopics(until: number): Promise<void> {
  const max = config.maxTopics ?? 2_000_000;
  const connections = Math.max(1, config.connections ?? 1);
  const at = target();
  await Promise.all(
    Array.from({ length: connections }, (_, c) =>
      new Promise<void>((resolve) => {
        const socket = connect(at as never);
        report.connectionsOpened++;
        let n = 0;
        const pump = (): void => {
          while (Date.now() < until && report.subscriptions < max) {
            const batch = Math.min(2000, max - report.subscriptions);
            const more = socket.write(subscriptionFrames(c, n, batch));
            n += batch;
            report.subscriptions += batch;
            if (!more) return; // wait for 'drain'
          }
        };
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, Math.max(0, until - Date.now()));
        socket.on('drain', pump);
        socket.on('error', () => {
          report.connectErrors++;
        });
        socket.on('connect', () => {
          socket.write(zmtpHello());
          pump();
        });
      }),
    ),
  );
}

function target(): { host: string; port: number } | { path: string } {
  const ep = config.endpoint;
  const tcp = /^tcp:\/\/(.+):(\d+)$/.exec(ep);
  if (tcp !== null) return { host: tcp[1] as string, port: Number(tcp[2]) };
  if (ep.startsWith('ipc://@')) return { path: `\0${ep.slice('ipc://@'.length)}` };
  return { path: ep.slice('ipc://'.length) };
}

/** Opens `perSecond` raw connections a second, each closed as soon as it is up. */
async function churn(until: number): Promise<void> {
  const gap = 1000 / Math.max(1, config.perSecond ?? 600);
  const at = target();
  let next = Date.now();
  while (Date.now() < until) {
    const socket = connect(at as never);
    report.connectionsOpened++;
    socket.on('connect', () => socket.destroy());
    socket.on('error', () => {
      report.connectErrors++;
      socket.destroy();
    });
    next += gap;
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else if (report.connectionsOpened % 20 === 0) await new Promise((r) => setImmediate(r));
  }
}

process.on('disconnect', () => process.exit(0));
const until = Date.now() + config.durationMs;
(config.mode === 'churn' ? churn(until) : config.mode === 'raw-topics' ? rawTopics(until) : topics(until)).then(
  () => {
    send('report', { ...report });
    setTimeout(() => process.exit(0), 50);
  },
  (error: unknown) => {
    send('crashed', { message: String(error) });
    process.exit(1);
  },
);
