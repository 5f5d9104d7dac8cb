/**
 * The order in which a Watcher drives its transport and calls back, with a recording transport
 * (no sockets): a new primary announces itself before its application code runs.
 */
import { expect, it } from 'vitest';
import { tempWorkdir } from '../../harness/cluster.js';
import { decode } from '../../src/protocol/codec.js';
import { Watcher } from '../../src/index.js';
import type { Frames, Transport } from '../../src/transport/transport.js';

it('binds, writes the epoch, sends instance.promoted and a heartbeat, and only then calls onPromote', async () => {
  const work = tempWorkdir();
  const calls: string[] = [];
  const transport: Transport = {
    open: async () => undefined,
    probe: () => undefined,
    bind: async () => {
      calls.push('bind');
      return { outcome: 'bound' };
    },
    publish: async (frames: Frames) => {
      const d = decode(frames as unknown as Uint8Array[]);
      calls.push(`publish ${d.ok ? d.message.topic : 'garbage'}`);
    },
    release: async () => {
      calls.push('release');
    },
    close: async () => undefined,
    counters: () => ({ peersRefused: 0, subscriptionsIgnored: 0, handshakesFailed: 0, reconnects: 0 }),
  };
  const watcher = new Watcher(
    {
      endpoint: 'ipc://@fw-order-unit',
      workdir: work.path,
      role: 'primary',
      heartbeatInterval: 1000,
      heartbeatTimeout: 3000,
      onPromote: ({ epoch }) => {
        calls.push(`onPromote ${epoch}`);
      },
    },
    { transport },
  );
  await watcher.start();
  expect(calls.slice(0, 4)).toEqual(['bind', 'publish instance.promoted', 'publish instance.heartbeat', 'onPromote 1']);
  await watcher.shutdown();
  expect(calls).toContain('release');
  work.cleanup();
});
