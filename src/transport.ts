/**
 * failover-watch/transport: the port through which a watcher reaches its endpoint, public for
 * those who bring their own (docs/TRANSPORT.md). A transport gives the watcher an exclusive bind
 * that is released when its holder closes or dies, a disconnect signal, and per-sender ordering;
 * {@link transportConformance} checks a transport for exactly that.
 *
 * Shipped here: {@link createZmqTransport} (what a watcher uses when given none) and
 * {@link ZmqBus} (the watcher on the application's own zeromq.js publisher and subscriber).
 *
 * @example
 * import { Watcher } from 'failover-watch';
 * import { createZmqTransport } from 'failover-watch/transport';
 *
 * const endpoint = 'tcp://127.0.0.1:5555';
 * const watcher = new Watcher({ endpoint }, { transport: createZmqTransport(endpoint) });
 *
 * @module
 */
import { InvalidOptionError } from './errors.js';
import type { Transport } from './transport/transport.js';
import { parseEndpoint } from './transport/zmq/endpoint.js';
import { ZmqTransport } from './transport/zmq/zmq-transport.js';
import type { Logger } from './runtime/logger.js';

export type {
  BindOutcome,
  Frames,
  Transport,
  TransportCounters,
  TransportEvent,
  TransportHandlers,
} from './transport/transport.js';
export { ZmqBus } from './transport/bus/zmq-bus.js';
export type { BusFrames, ZmqBusCounters, ZmqBusOptions } from './transport/bus/zmq-bus.js';
export { transportConformance } from './transport/conformance.js';
export type {
  ConformanceFactory,
  ConformanceFixture,
  ConformanceOptions,
  ConformanceRunner,
} from './transport/conformance.js';

/** Options of {@link createZmqTransport}. */
export interface ZmqTransportOptions {
  /** Where warnings about unsafe endpoints go. @default silent */
  readonly logger?: Logger;
}

/**
 * The ZeroMQ transport on `endpoint` (`tcp://HOST:PORT`, `ipc://@NAME`, `ipc:///PATH`): an XPUB
 * the holder binds, a SUB every node connects. Throws `InvalidOptionError` for another endpoint.
 * (For CURVE, give the watcher its `curve` option and no transport.)
 */
export function createZmqTransport(endpoint: string, options: ZmqTransportOptions = {}): Transport {
  const parsed = typeof endpoint === 'string' ? parseEndpoint(endpoint) : 'a string';
  if (typeof parsed === 'string') throw new InvalidOptionError('endpoint', parsed, endpoint);
  return new ZmqTransport(parsed, options.logger === undefined ? {} : { logger: options.logger });
}
