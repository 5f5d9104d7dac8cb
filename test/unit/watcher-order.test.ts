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

it('a role change is stamped with the step that decided it, not after a slow release before its notification', async () => {
  const work = tempWorkdir();
  let releaseEnteredAt: number | undefined;
  const transport: Transport = {
    open: async () => undefined,
    probe: () => undefined,
    bind: async () => ({ outcome: 'bound' }),
    publish: async () => undefined,
    // A release that keeps this thread for 30 ms, as a close preempted on a busy host can: the
    // end of the primary role must not be stamped after it, or a successor that took over
    // meanwhile would appear to overlap it.
    release: async () => {
      releaseEnteredAt = performance.timeOrigin + performance.now();
      const until = performance.now() + 30;
      while (performance.now() < until) {
        // busy on purpose, bounded
      }
    },
    close: async () => undefined,
  };
  const watcher = new Watcher(
    { endpoint: 'ipc://@fw-order-stamp', workdir: work.path, role: 'primary', heartbeatInterval: 1000, heartbeatTimeout: 3000 },
    { transport },
  );
  const ends: number[] = [];
  watcher.on('roleChanged', (change) => {
    if (change.from === 'primary') ends.push(change.at);
  });
  await watcher.start();
  await watcher.shutdown();
  expect(releaseEnteredAt).toBeDefined();
  expect(ends).toHaveLength(1);
  expect(ends[0]).toBeLessThanOrEqual(releaseEnteredAt as number);
  work.cleanup();
});
