/**
 * The watcher's safe defaults: a warning, once, for a tcp endpoint that is not on loopback while
 * CURVE is off; none on loopback or with CURVE. A stub transport (no socket is opened), except
 * with CURVE, which only the built-in transport takes.
 */
import * as zmq from 'zeromq';
import { describe, expect, it } from 'vitest';
import type { Transport } from '../../src/transport/transport.js';
import { Watcher, type WatcherOptions } from '../../src/index.js';
import { tempWorkdir } from '../../harness/cluster.js';

const stub = (): Transport => ({
  open: async () => undefined,
  probe: () => undefined,
  bind: async () => ({ outcome: 'in-use' }),
  publish: async () => undefined,
  release: async () => undefined,
  close: async () => undefined,
});

// `real`: the built-in ZeroMQ transport (a secondary only connects, which opens no listener);
// needed with `curve`, which a transport of one's own cannot take.
async function warningsOf(options: Omit<WatcherOptions, 'logger' | 'workdir' | 'role'>, real = false): Promise<string[]> {
  const warnings: string[] = [];
  const tmp = tempWorkdir();
  const logger = { debug: () => {}, info: () => {}, warn: (m: string) => warnings.push(m), error: () => {} };
  const watcher = new Watcher({ ...options, role: 'secondary', workdir: tmp.path, logger }, real ? undefined : { transport: stub() });
  try {
    await watcher.start();
    await watcher.shutdown();
  } finally {
    tmp.cleanup();
  }
  return warnings;
}

const server = zmq.curveKeyPair();
const client = zmq.curveKeyPair();

describe('a tcp endpoint off loopback', () => {
  it('without CURVE: warns once at start, naming the endpoint and the option', async () => {
    const warnings = await warningsOf({ endpoint: 'tcp://10.1.2.3:5555' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('tcp://10.1.2.3:5555');
    expect(warnings[0]).toContain('`curve`');
  });

  it('with CURVE: no warning', async () => {
    const curve = { serverPublicKey: server.publicKey, serverSecretKey: server.secretKey, publicKey: client.publicKey, secretKey: client.secretKey, allowedClientKeys: [] };
    const warnings = await warningsOf({ endpoint: 'tcp://10.1.2.3:5555', curve }, true);
    expect(warnings).toEqual([]);
  });

  for (const endpoint of ['tcp://127.0.0.1:5555', 'tcp://127.9.9.9:5555', 'tcp://localhost:5555', 'tcp://[::1]:5555', 'ipc://@x']) {
    it(`on ${endpoint}: no warning`, async () => {
      expect(await warningsOf({ endpoint })).toEqual([]);
    });
  }
});
