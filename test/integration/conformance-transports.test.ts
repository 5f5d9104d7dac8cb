/**
 * The transport conformance suite (src/transport/conformance.ts, shipped in
 * failover-watch/transport) against every transport the project ships on real sockets: the
 * ZeroMQ transport on tcp, an abstract ipc socket and a filesystem ipc path, and the bus adapter
 * on the application's own sockets (a plain Publisher and an XPublisher).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { describe, it } from 'vitest';
import { createZmqTransport, transportConformance, ZmqBus } from 'failover-watch/transport';
import { freePort, uniqueIpc } from '../../harness/cluster.js';

const runner = { describe, it };
const linux = process.platform === 'linux';

transportConformance('zmq tcp', async () => {
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  return { transport: () => createZmqTransport(endpoint) };
}, runner);

if (linux) {
  transportConformance('zmq ipc abstract', () => {
    const endpoint = uniqueIpc('fw-conf');
    return { transport: () => createZmqTransport(endpoint) };
  }, runner);
}

transportConformance('zmq ipc path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fw-conf-'));
  const endpoint = `ipc://${dir}/endpoint.sock`;
  return { transport: () => createZmqTransport(endpoint), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}, runner);

for (const kind of ['Publisher', 'XPublisher'] as const) {
  transportConformance(`bus adapter tcp (${kind})`, async () => {
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    return {
      transport: () =>
        new ZmqBus({
          publisher: kind === 'Publisher' ? new zmq.Publisher() : new zmq.XPublisher(),
          subscriber: new zmq.Subscriber({ reconnectInterval: 10, reconnectMaxInterval: 100 }),
          endpoint,
        }),
    };
  }, runner);
}

if (linux) {
  transportConformance('bus adapter ipc abstract', () => {
    const endpoint = uniqueIpc('fw-conf-bus');
    return {
      transport: () => new ZmqBus({ publisher: new zmq.Publisher(), subscriber: new zmq.Subscriber({ reconnectInterval: 10 }), endpoint }),
    };
  }, runner);
}

transportConformance('bus adapter ipc path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fw-conf-bus-'));
  const endpoint = `ipc://${dir}/endpoint.sock`;
  return {
    transport: () => new ZmqBus({ publisher: new zmq.Publisher(), subscriber: new zmq.Subscriber({ reconnectInterval: 10 }), endpoint }),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}, runner);
