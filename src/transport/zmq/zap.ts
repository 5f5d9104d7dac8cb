/**
 * A ZAP 1.0 handler (ZeroMQ RFC 27) that admits CURVE clients by public key.
 *
 * libzmq asks the handler bound at `inproc://zeromq.zap.01` in the socket's own context about
 * every incoming CURVE handshake on a socket that has a ZAP domain; zeromq.js has no helper for
 * it, so this module is one: a Router socket in the default context (the one every socket of
 * this package uses), shared by all transports of the process. Each transport registers its own
 * ZAP domain with the set of client keys it admits; a request for an unknown domain, another
 * mechanism or a key not in the set is denied (status 400), and the handshake fails.
 *
 * The handler runs on the Node event loop: a process whose loop is blocked admits nobody until
 * it runs again (existing connections are not affected).
 *
 * Keys never leave this module: replies carry no user id and no metadata, and nothing is logged.
 *
 * @module
 */
import * as zmq from 'zeromq';
import { FailoverError } from '../../errors.js';
import { z85Decode } from './curve.js';

/** The well-known ZAP endpoint (RFC 27). */
export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

/** A registration of one ZAP domain; `release()` removes it (the last one stops the handler). */
export interface ZapRegistration {
  /** The domain to set as the socket's `zapDomain`. */
  readonly domain: string;
  /** Handshakes denied for this domain so far. */
  readonly denied: number;
  release(): Promise<void>;
}

interface Domain {
  readonly keys: ReadonlySet<string>;
  denied: number;
}

const domains = new Map<string, Domain>();
let router: zmq.Router | undefined;
let starting: Promise<zmq.Router> | undefined;
let loop: Promise<void> | undefined;
/** The release of the previous handler, while it lets go of the endpoint. */
let stopping: Promise<void> | undefined;
let nextDomain = 0;

/**
 * Registers a domain admitting the given Z85 client public keys and makes sure the handler
 * runs (after this module's previous handler, if one is being released, has let go of the
 * endpoint). Throws `ERR_FAILOVER_TRANSPORT` when a ZAP handler that is not this module's holds
 * the endpoint in this process.
 */
export async function registerZapDomain(allowedClientKeys: readonly string[]): Promise<ZapRegistration> {
  const keys = new Set<string>();
  for (const key of allowedClientKeys) {
    const raw = z85Decode(key);
    if (raw !== undefined && raw.length === 32) keys.add(raw.toString('hex'));
  }
  const domain = `failover-watch.${process.pid}.${++nextDomain}`;
  const entry: Domain = { keys, denied: 0 };
  domains.set(domain, entry);
  try {
    await ensureRunning();
  } catch (error) {
    domains.delete(domain);
    throw error;
  }
  let released = false;
  return {
    domain,
    get denied() {
      return entry.denied;
    },
    async release() {
      if (released) return;
      released = true;
      domains.delete(domain);
      if (domains.size === 0) await stop();
    },
  };
}

async function ensureRunning(): Promise<void> {
  // Our previous handler first lets go of the endpoint: binding it before then fails.
  while (stopping !== undefined) await stopping;
  if (router !== undefined) return;
  if (starting === undefined) {
    starting = (async () => {
      const socket = new zmq.Router({ linger: 0, receiveHighWaterMark: 1000, sendHighWaterMark: 1000 });
      try {
        await socket.bind(ZAP_ENDPOINT);
      } catch (error) {
        socket.close();
        // None of this module's handlers is bound now (none runs, none is being released).
        const why =
          (error as { code?: string }).code === 'EADDRINUSE'
            ? `${ZAP_ENDPOINT} is bound by another ZAP handler in this process, not failover-watch's; a process can run only one (see docs/SECURITY.md)`
            : `cannot bind ${ZAP_ENDPOINT}: ${error instanceof Error ? error.message : String(error)}`;
        throw new FailoverError('ERR_FAILOVER_TRANSPORT', `cannot start the CURVE authenticator: ${why}`, { cause: error });
      }
      return socket;
    })();
  }
  const pending = starting;
  try {
    const socket = await pending;
    if (router === undefined && starting === pending) {
      router = socket;
      loop = serve(socket);
    }
  } finally {
    if (starting === pending) starting = undefined;
  }
}

async function stop(): Promise<void> {
  if (starting !== undefined) {
    try {
      await starting;
    } catch {
      // Never started.
    }
  }
  if (domains.size > 0) return; // re-registered meanwhile
  const socket = router;
  router = undefined;
  if (socket === undefined) return;
  const served = loop;
  loop = undefined;
  // Release the endpoint with the socket: libzmq frees an inproc name some time after close(),
  // but at once on unbind; a registration meanwhile waits for this (see ensureRunning).
  const release = (async (): Promise<void> => {
    try {
      await socket.unbind(ZAP_ENDPOINT);
    } catch {
      // Closing releases it too, later.
    }
    socket.close();
    await served;
  })();
  stopping = release;
  try {
    await release;
  } finally {
    if (stopping === release) stopping = undefined;
  }
}

const VERSION = Buffer.from('1.0');
const EMPTY = Buffer.alloc(0);
const OK = [Buffer.from('200'), Buffer.from('OK')] as const;
const DENIED = [Buffer.from('400'), Buffer.from('Not allowed')] as const;

async function serve(socket: zmq.Router): Promise<void> {
  try {
    for await (const frames of socket) {
      const reply = answer(frames);
      if (reply === undefined) continue;
      try {
        await socket.send(reply);
      } catch {
        // Closed meanwhile, or the requester went away.
      }
    }
  } catch {
    // Closed under the iterator.
  }
}

/** The reply to one request, or undefined for a frame sequence that is not a request. */
function answer(frames: Buffer[]): Buffer[] | undefined {
  // [routing id, empty, version, request id, domain, address, identity, mechanism, ...credentials]
  if (frames.length < 8) return undefined;
  const [routing, delimiter, version, requestId, domainFrame, , , mechanism] = frames as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  if (delimiter.length !== 0) return undefined;
  const head = [routing, EMPTY, VERSION, requestId];
  const tail = [EMPTY, EMPTY]; // no user id, no metadata
  if (!version.equals(VERSION)) return [...head, ...DENIED, ...tail];
  const domain = domains.get(domainFrame.toString('utf8'));
  const key = frames[8];
  const admitted =
    domain !== undefined &&
    mechanism.toString('utf8') === 'CURVE' &&
    frames.length === 9 &&
    key !== undefined &&
    key.length === 32 &&
    domain.keys.has(key.toString('hex'));
  if (!admitted && domain !== undefined) domain.denied++;
  return [...head, ...(admitted ? OK : DENIED), ...tail];
}
