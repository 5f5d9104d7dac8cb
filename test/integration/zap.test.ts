/**
 * The ZAP handler's lifetime (issue 15, item 4): a CURVE node whose bind failed (a squatter held
 * the endpoint) released its ZAP handler, and its next bind, once the squatter left, registered
 * it again at once. The old handler's socket was closed but libzmq had not yet let go of
 * `inproc://zeromq.zap.01`, so the bind failed, logged as "taken in this process (another ZAP
 * handler?)". The handler now unbinds the endpoint before it closes its socket, and a new
 * registration waits for a release under way; a handler that is really someone else's is named so.
 */
import * as zmq from 'zeromq';
import { afterEach, expect, it } from 'vitest';
import { uniqueIpc } from '../../harness/cluster.js';
import type { TransportHandlers } from '../../src/transport/transport.js';
import { parseEndpoint, type Endpoint } from '../../src/transport/zmq/endpoint.js';
import { registerZapDomain, ZAP_ENDPOINT } from '../../src/transport/zmq/zap.js';
import { ZmqTransport } from '../../src/transport/zmq/zmq-transport.js';

const sockets: zmq.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

const server = zmq.curveKeyPair();
const client = zmq.curveKeyPair();
const curve = { serverPublicKey: server.publicKey, serverSecretKey: server.secretKey, ...client, allowedClientKeys: [] };
const ROUNDS = 40;
const handlers: TransportHandlers = { onMessage: () => {}, onPresence: () => {}, onEvent: () => {} };

it('a CURVE node binds as soon as a squatter leaves', async () => {
  // The attack of the issue, ROUNDS times: the squatter holds the endpoint, the node's bind fails
  // (in use), the squatter leaves, the node's next binds must end bound. On the old code some
  // failed with the ZAP message instead.
  const outcomes: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const e = parseEndpoint(uniqueIpc('fw-zap')) as Endpoint;
    const squatter = new zmq.Publisher({ linger: 0 });
    sockets.push(squatter);
    await squatter.bind(e.address);
    const t = new ZmqTransport(e, { curve });
    try {
      await t.open(handlers);
      expect((await t.bind()).outcome).toBe('in-use');
      // The squatter leaves; the node tries again at once until the name is free (bounded),
      // each failed try registering and releasing its ZAP handler.
      squatter.close();
      let r = await t.bind();
      for (let tries = 0; r.outcome === 'in-use' && tries < 1000; tries++) r = await t.bind();
      outcomes.push(r.outcome === 'failed' ? `failed: ${r.detail}` : r.outcome);
    } finally {
      await t.close();
    }
  }
  expect(outcomes).toEqual(Array(ROUNDS).fill('bound'));
});

it('registers again while its own release is under way', async () => {
  // A release closes the handler's socket; libzmq lets go of the inproc name a little later. A
  // registration right then bound too early: on the old code about one in three failed here.
  const failures: string[] = [];
  for (let i = 0; i < 500; i++) {
    const zap = await registerZapDomain([]);
    const releasing = zap.release();
    try {
      const again = await registerZapDomain([]);
      await again.release();
    } catch (error) {
      failures.push((error as Error).message);
    }
    await releasing;
  }
  expect(failures).toEqual([]);
});

it('names a ZAP handler bound by other code', async () => {
  const foreign = new zmq.Router({ linger: 0 });
  sockets.push(foreign);
  await foreign.bind(ZAP_ENDPOINT);
  const error = await registerZapDomain([]).then(
    () => undefined,
    (e: unknown) => e as Error & { code?: string },
  );
  expect(error?.code).toBe('ERR_FAILOVER_TRANSPORT');
  expect(error?.message).toBe(
    `cannot start the CURVE authenticator: ${ZAP_ENDPOINT} is bound by another ZAP handler in this process, not failover-watch's; ` +
      'a process can run only one (see docs/SECURITY.md)',
  );
  await foreign.unbind(ZAP_ENDPOINT);
});
