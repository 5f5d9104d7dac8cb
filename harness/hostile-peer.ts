/**
 * A hostile peer in its own OS process, for `test/integration/hostile-peer.test.ts`. It knows the
 * cluster's endpoint (and at most a CURVE key pair of its own, never the cluster's) and attacks
 * for a bounded time, then reports what it achieved to the parent as `{ type: 'report', ... }`.
 *
 * What a peer can reach in ZeroMQ PUB/SUB: only the binder of the endpoint publishes to the
 * secondaries, and their SUB sockets connect out (nothing listens on them). So:
 *
 * - `subscriber` mode (a cluster is running): connect to the primary's XPUB and send everything
 *   upstream: raw random bytes on the socket, floods of fake presence ids and probe
 *   subscriptions, oversized and malformed subscription frames, forged and replayed messages
 *   sent upstream at full speed; listen for heartbeats (eavesdropping); keep trying to bind the
 *   endpoint (squatting a held endpoint).
 * - `squatter` mode (the endpoint is free): bind it first and publish everything to whoever
 *   connects: random bytes, msgpack of wrong types, huge frames, floods, replayed heartbeats,
 *   forged shutdowns and promotions with other ids, epochs far in the future.
 *
 * argv[2] is a JSON {@link HostileConfig}. Commands from the parent: `{ cmd: 'attack' }` (squatter:
 * start publishing), `{ cmd: 'leave' }` (squatter: unbind and exit).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket as NetSocket } from 'node:net';
import { Packr } from 'msgpackr';
import * as zmq from 'zeromq';

export interface HostileConfig {
  readonly endpoint: string;
  readonly mode: 'subscriber' | 'squatter';
  /** How long the attack lasts, ms. */
  readonly durationMs: number;
  /** How many fake node ids to announce (presence subscriptions). */
  readonly fakeIds: number;
  /** A CURVE identity of the attacker's own: the cluster's server public key (public) and a pair not admitted. */
  readonly curve?: { readonly serverPublicKey: string; readonly publicKey: string; readonly secretKey: string };
}

/** What the attacker reports at the end. */
export interface HostileReport {
  /** Messages received on `instance.` (heartbeats etc.) by listening on the endpoint. */
  readonly eavesdropped: number;
  /** Messages sent (upstream or published). */
  readonly sent: number;
  /** Raw tcp/ipc connections opened to send random bytes. */
  readonly rawConnections: number;
  /** Attempts to bind the endpoint, and how many succeeded. */
  readonly bindAttempts: number;
  readonly bindSuccesses: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as HostileConfig;
const packr = new Packr({ useRecords: false });
const report = { eavesdropped: 0, sent: 0, rawConnections: 0, bindAttempts: 0, bindSuccesses: 0 };
const send = (type: string, data: Record<string, unknown> = {}): void => {
  if (process.connected) process.send?.({ type, at: Date.now(), ...data });
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const random = (n: number): number => Math.floor(Math.random() * n);

function clientCurve(): Partial<zmq.Subscriber> {
  const c = config.curve;
  return c === undefined ? {} : { curveServerKey: c.serverPublicKey, curvePublicKey: c.publicKey, curveSecretKey: c.secretKey };
}

/** Forged payloads: right shape, other ids, epochs far in the future; and wrong shapes. */
function forged(): Buffer[] {
  const topics = ['instance.heartbeat', 'instance.shutdown', 'instance.promoted'];
  const topic = Buffer.from(topics[random(3)] as string);
  const base = { version: 1, instanceId: `forged-${random(10)}`, seq: random(1000), sentAt: Date.now(), pid: 1 + random(60000), host: 'evil' };
  switch (random(8)) {
    case 0:
      return [topic, packr.pack({ ...base, epoch: 1_000_000_000_000 + random(1000) })];
    case 1:
      return [topic, packr.pack({ ...base, epoch: random(3) })]; // an old epoch
    case 2:
      return [topic, packr.pack({ ...base, instanceId: 12, epoch: 'x', pid: -1 })]; // wrong types
    case 3:
      return [topic, packr.pack([1, 2, { version: 1 }])];
    case 4:
      return [topic, randomBytes(1 + random(200))];
    case 5:
      // An unknown topic under the subscribed prefix, or random bytes (filtered out by SUB).
      return random(2) === 0
        ? [Buffer.concat([Buffer.from('instance.'), randomBytes(1 + random(40))]), randomBytes(random(64))]
        : [randomBytes(1 + random(64)), randomBytes(random(64))];
    case 6:
      return [topic, packr.pack({ ...base, epoch: 5, members: Array.from({ length: 100 }, (_, i) => [`m${i}`, 0]) })];
    default:
      return [topic];
  }
}

function rawTarget(): { host: string; port: number } | { path: string } | undefined {
  const ep = config.endpoint;
  const tcp = /^tcp:\/\/(.+):(\d+)$/.exec(ep);
  if (tcp !== null) return { host: tcp[1] as string, port: Number(tcp[2]) };
  if (ep.startsWith('ipc://@')) return { path: `\0${ep.slice('ipc://@'.length)}` };
  if (ep.startsWith('ipc://')) return { path: ep.slice('ipc://'.length) };
  return undefined;
}

/** Opens connections to the endpoint and writes random bytes until they are closed on us. */
async function rawGarbage(until: number): Promise<void> {
  const target = rawTarget();
  if (target === undefined) return;
  while (Date.now() < until) {
    await new Promise<void>((resolve) => {
      const socket: NetSocket = connect(target as never);
      report.rawConnections++;
      const end = (): void => {
        clearInterval(timer);
        socket.destroy();
        resolve();
      };
      socket.on('error', end);
      socket.on('close', end);
      // Some connections pretend to start ZMTP (a valid signature), then send garbage.
      const timer = setInterval(() => {
        if (Date.now() >= until) return end();
        const head = random(2) === 0 ? Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f]) : Buffer.alloc(0);
        socket.write(Buffer.concat([head, randomBytes(1 + random(4096))]));
      }, 5);
      setTimeout(end, 300);
    });
  }
}

/** Keeps trying to take a held endpoint. */
async function squatAttempts(until: number): Promise<void> {
  while (Date.now() < until) {
    const pub = new zmq.Publisher({ linger: 0 });
    report.bindAttempts++;
    try {
      await pub.bind(config.endpoint);
      report.bindSuccesses++;
    } catch {
      // EADDRINUSE: the primary holds it.
    }
    pub.close();
    await sleep(50);
  }
}

/** Listens like a secondary would; keeps a few heartbeats to replay. */
async function eavesdrop(until: number, kept: Buffer[][]): Promise<void> {
  const sub = new zmq.Subscriber({ linger: 0, receiveTimeout: 100, ...clientCurve() });
  sub.subscribe('instance.');
  sub.connect(config.endpoint);
  while (Date.now() < until) {
    try {
      const frames = await sub.receive();
      report.eavesdropped++;
      if (kept.length < 20) kept.push(frames);
    } catch {
      // receive timeout
    }
  }
  sub.close();
}

/** Floods the XPUB with subscriptions and upstream messages at full speed. */
async function upstreamFlood(until: number, kept: Buffer[][]): Promise<void> {
  const xsub = new zmq.XSubscriber({ linger: 0, sendHighWaterMark: 10_000, ...clientCurve() });
  xsub.connect(config.endpoint);
  const sub = (topic: string, on = true): Buffer => Buffer.concat([Buffer.from([on ? 1 : 0]), Buffer.from(topic)]);
  // First, up to 1100 distinct fake ids, all joined: with `fakeIds` over 1024 (the primary's cap)
  // the cap is reached however fast the random flood below turns out to be on a loaded host.
  // (Not counted in `sent`, which measures the random flood.)
  for (let n = 0; n < Math.min(config.fakeIds, 1100) && Date.now() < until; n++) {
    try {
      await xsub.send(sub(`presence.1.fake-${n}`));
    } catch {
      // dropped at the high-water mark, or the connection was reset
    }
  }
  // Then 40 liveness probes back to back: a burst that arrives within the primary's answer gap
  // (10 ms), so its rate limit is exercised however the random flood below is spread in time on a
  // loaded host. (Not counted in `sent` either.)
  for (let n = 0; n < 40 && Date.now() < until; n++) {
    try {
      await xsub.send(sub(`probe.evil.burst-${n}`));
    } catch {
      // dropped at the high-water mark, or the connection was reset
    }
  }
  let i = 0;
  while (Date.now() < until) {
    const batch: Array<Buffer | Buffer[]> = [];
    for (let k = 0; k < 200; k++, i++) {
      switch (i % 10) {
        case 0:
        case 1:
        case 2:
          batch.push(sub(`presence.${random(3)}.fake-${i % config.fakeIds}`, random(5) !== 0));
          break;
        case 3:
          batch.push(sub(`probe.evil.${i}`, random(2) === 0));
          break;
        case 4:
          batch.push(sub(`presence.0.${'x'.repeat(400)}`)); // too long to be a presence
          break;
        case 5:
          batch.push(Buffer.from([7, ...randomBytes(20)])); // neither subscribe nor unsubscribe
          break;
        case 6:
          batch.push(forged()); // a forged message sent upstream
          break;
        case 7:
          batch.push(kept[random(Math.max(kept.length, 1))] ?? forged()); // a replayed heartbeat
          break;
        case 8:
          batch.push(sub('presence.not-a-number.x'));
          break;
        default:
          if (i % 1000 === 9) batch.push(Buffer.concat([Buffer.from([1]), randomBytes(100_000)])); // huge: over the limit
          else batch.push(sub(`presence.1.fake-${i % config.fakeIds}`));
      }
    }
    for (const message of batch) {
      try {
        await xsub.send(message);
        report.sent++;
      } catch {
        // dropped at the high-water mark, or the connection was reset
      }
    }
    await new Promise((r) => setImmediate(r));
  }
  xsub.close();
}

async function subscriberMode(): Promise<void> {
  const until = Date.now() + config.durationMs;
  const kept: Buffer[][] = [];
  await Promise.all([
    eavesdrop(until, kept),
    upstreamFlood(until, kept),
    upstreamFlood(until, kept),
    rawGarbage(until),
    squatAttempts(until),
  ]);
}

async function squatterMode(): Promise<void> {
  const pub = new zmq.XPublisher({ linger: 0, sendHighWaterMark: 10_000 });
  try {
    await pub.bind(config.endpoint);
  } catch (error) {
    send('bindFailed', { message: String(error) });
    return;
  }
  report.bindSuccesses++;
  let subscribers = 0;
  void (async () => {
    try {
      for await (const [frame] of pub) if (frame?.[0] === 1 && frame.subarray(1).toString().startsWith('instance.')) subscribers++;
    } catch {
      // closed
    }
  })();
  send('bound');
  // Keep followers interested: a plausible primary until the attack starts.
  const hb = (epoch: number, seq: number): Buffer[] => [
    Buffer.from('instance.heartbeat'),
    packr.pack({ version: 1, instanceId: 'squatter', epoch, seq, sentAt: Date.now(), pid: process.pid, host: 'evil', heartbeatInterval: 50 }),
  ];
  let seq = 0;
  const attack = new Promise<void>((resolve) => process.on('message', (m: { cmd?: string }) => m.cmd === 'attack' && resolve()));
  const leave = new Promise<void>((resolve) => process.on('message', (m: { cmd?: string }) => m.cmd === 'leave' && resolve()));
  let attacking = false;
  void attack.then(() => (attacking = true));
  while (!attacking) {
    await pub.send(hb(3, ++seq)).catch(() => undefined);
    send('subscribers', { count: subscribers });
    await sleep(50);
  }
  const until = Date.now() + config.durationMs;
  const replay = [hb(3, 1), hb(3, 2), hb(2, 7)];
  let i = 0;
  while (Date.now() < until) {
    for (let k = 0; k < 100; k++, i++) {
      let message: Buffer[];
      switch (i % 6) {
        case 0:
          message = replay[random(replay.length)] as Buffer[];
          break;
        case 1:
          message = i % 500 === 1 ? [Buffer.from('instance.heartbeat'), randomBytes(1_000_000)] : [Buffer.from('instance.heartbeat'), randomBytes(5000)];
          break;
        default:
          message = forged();
      }
      try {
        await pub.send(message);
        report.sent++;
      } catch {
        // high-water mark
      }
    }
    await new Promise((r) => setImmediate(r));
  }
  send('attacked', { ...report });
  // Plausible heartbeats of a new epoch until told to leave, so the parent can tell the
  // followers caught up (a single one could be dropped at the high-water mark).
  let left = false;
  void leave.then(() => (left = true));
  while (!left) {
    await pub.send(hb(4, ++seq)).catch(() => undefined);
    await sleep(50);
  }
  pub.close();
}

process.on('disconnect', () => process.exit(0));
const run = config.mode === 'squatter' ? squatterMode() : subscriberMode();
run.then(
  () => {
    send('report', { ...report });
    setTimeout(() => process.exit(0), 50);
  },
  (error: unknown) => {
    send('crashed', { message: String(error) });
    process.exit(1);
  },
);
