/**
 * The watcher at the epoch ceiling, with a real state file and a scripted transport (no
 * sockets): the cold restart of issue 14 (a state file holding 2^53, written by a node that
 * promoted past the ceiling, was discarded and the node started again at epoch 1), and a node
 * that takes the last valid epoch and is restarted.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { tempWorkdir } from '../../harness/cluster.js';
import { Watcher, type EpochExhaustedEvent } from '../../src/index.js';
import { formatRecord, StateFile } from '../../src/runtime/state-file.js';
import type { Transport } from '../../src/transport/transport.js';

const MAX = Number.MAX_SAFE_INTEGER;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function workdir(): string {
  const w = tempWorkdir('fw-epoch-');
  cleanups.push(w.cleanup);
  return w.path;
}

/** A free endpoint: every bind succeeds. Records the socket operations asked for. */
function transport(calls: string[]): Transport {
  return {
    open: async () => undefined,
    probe: () => undefined,
    bind: async () => {
      calls.push('bind');
      return { outcome: 'bound' };
    },
    publish: async () => {
      calls.push('publish');
    },
    release: async () => {
      calls.push('release');
    },
    close: async () => undefined,
    counters: () => ({ peersRefused: 0, subscriptionsIgnored: 0, handshakesFailed: 0, reconnects: 0 }),
  };
}

function watcher(dir: string, role: 'auto' | 'primary', calls: string[], onPromote?: (epoch: number) => void): Watcher {
  const w = new Watcher(
    {
      endpoint: `ipc://@fw-epoch-unit-${role}-${process.pid}-${Math.random().toString(36).slice(2)}`,
      workdir: dir,
      role,
      heartbeatInterval: 100,
      heartbeatTimeout: 300,
      rehearsals: 0,
      ...(onPromote !== undefined ? { onPromote: ({ epoch }: { epoch: number }) => onPromote(epoch) } : {}),
    },
    { transport: transport(calls) },
  );
  cleanups.push(() => w.shutdown());
  return w;
}

/** What a node of an earlier version wrote after it promoted past the ceiling. */
function plantUnsafeEpoch(dir: string): string {
  const path = new StateFile(dir).path;
  writeFileSync(path, formatRecord({ epoch: 2 ** 53, primary: { instanceId: 'old', pid: 7, host: 'box' }, updatedAt: 1 }));
  return path;
}

describe('Watcher at the epoch ceiling', () => {
  it('state file past 2^53 - 1: auto starts as secondary, no bind', async () => {
    const dir = workdir();
    plantUnsafeEpoch(dir);
    const calls: string[] = [];
    const promoted: number[] = [];
    const w = watcher(dir, 'auto', calls, (e) => void promoted.push(e));
    const events: EpochExhaustedEvent[] = [];
    w.on('epochExhausted', (e) => void events.push(e));
    await w.start();
    await new Promise((resolve) => setImmediate(resolve));
    expect(w.role).toBe('secondary');
    expect(calls).toEqual([]);
    expect(promoted).toEqual([]);
    expect(events).toMatchObject([{ code: 'ERR_FAILOVER_EPOCH_EXHAUSTED', epoch: MAX, reason: 'startup' }]);
    expect(w.status()).toMatchObject({ epoch: MAX, epochExhausted: true, epochRefusals: 1 });
  });

  it('state file past 2^53 - 1: role primary fails to start', async () => {
    const dir = workdir();
    const path = plantUnsafeEpoch(dir);
    const calls: string[] = [];
    const w = watcher(dir, 'primary', calls);
    await expect(w.start()).rejects.toMatchObject({
      code: 'ERR_FAILOVER_EPOCH_EXHAUSTED',
      message: expect.stringContaining(path) as string,
    });
    expect(calls).toEqual([]);
    // The file is left as it was, for the operator.
    expect(readFileSync(path, 'utf8')).toContain('"epoch":9007199254740992');
  });

  it('takes 2^53 - 1 once, then refuses after a restart', async () => {
    const dir = workdir();
    new StateFile(dir).writeSync({ epoch: MAX - 1, primary: null, updatedAt: 1 });
    const calls: string[] = [];
    const promoted: number[] = [];
    const first = watcher(dir, 'auto', calls, (e) => void promoted.push(e));
    await first.start();
    expect(promoted).toEqual([MAX]);
    expect(first.status()).toMatchObject({ role: 'primary', epoch: MAX, epochExhausted: true });
    await first.shutdown();
    expect(new StateFile(dir).readSync().epoch).toBe(MAX);

    const again: string[] = [];
    const second = watcher(dir, 'auto', again, (e) => void promoted.push(e));
    await second.start();
    expect(second.role).toBe('secondary');
    expect(again).toEqual([]);
    expect(promoted).toEqual([MAX]);
  });
});
