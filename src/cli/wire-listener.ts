/**
 * A passive observer of a cluster endpoint: a SUB socket (through the ZeroMQ transport) that
 * takes no part in the election. It never binds and announces no presence, so the primary does
 * not list it among its members and no node counts it as a candidate.
 *
 * With `probe: true` it also subscribes a liveness-probe topic ({@link cliProbeTopic}):
 * a live primary answers that subscription with an immediate heartbeat (see the protocol), so the
 * CLI need not wait a whole `heartbeatInterval` for the first one. The answer is an ordinary
 * heartbeat with the next `seq`; nothing else changes for the cluster.
 *
 * @module
 */
import { randomInt } from 'node:crypto';
import { FailoverError } from '../errors.js';
import { decode } from '../protocol/codec.js';
import { PROBE_PREFIX } from '../protocol/messages.js';
import type { Endpoint } from '../transport/zmq/endpoint.js';
import type { CurveOptions } from '../transport/zmq/curve.js';
import { ZmqTransport } from '../transport/zmq/zmq-transport.js';
import { inputFromDecode, type ViewInput } from './view/cluster-view.js';

/** An open observer. */
export interface WireListener {
  /** Closes the socket; resolves when nothing more will be delivered. Idempotent. */
  close(): Promise<void>;
}

/**
 * The CLI's liveness-probe topic, `probe.failover-watch-cli.<nonce>`. Every CLI process probes
 * under the one id `failover-watch-cli`, so the nonce is random rather than a counter; it is in
 * decimal as PROTOCOL.md section 5 specifies (1 to 15 digits), so that two processes probing at
 * once never cancel each other's subscription.
 */
export function cliProbeTopic(): string {
  return `${PROBE_PREFIX}failover-watch-cli.${randomInt(0, 2 ** 48 - 1)}`;
}

/** Local wall-clock ms (sub-ms precision dropped): the `at` of every input. */
export const wallNow = (): number => Math.round(performance.timeOrigin + performance.now());

/**
 * Connects to `endpoint` and calls `onInput` for every message (decoded, or dropped with its
 * reason) and connection change. Rejects with `ERR_FAILOVER_TRANSPORT` if the socket cannot be
 * opened.
 */
export async function listen(
  endpoint: Endpoint,
  onInput: (input: ViewInput) => void,
  options: { readonly probe: boolean; readonly curve?: CurveOptions | undefined },
): Promise<WireListener> {
  const transport = new ZmqTransport(endpoint, { prepareBind: false, ...(options.curve === undefined ? {} : { curve: options.curve }) });
  let open = true;
  const deliver = (input: ViewInput): void => {
    if (open) onInput(input);
  };
  try {
    await transport.open({
      onMessage: (frames) => deliver(inputFromDecode(decode(frames), wallNow())),
      onEvent: (event) => {
        if (event.type === 'connected' || event.type === 'disconnected') {
          deliver({ type: 'connection', state: event.type, at: wallNow() });
        }
      },
      onPresence: () => undefined,
    });
    if (options.probe) transport.probe(cliProbeTopic(), true);
  } catch (error) {
    await transport.close().catch(() => undefined);
    throw new FailoverError(
      'ERR_FAILOVER_TRANSPORT',
      `cannot listen on ${endpoint.address}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return {
    async close() {
      open = false;
      await transport.close();
    },
  };
}
