/**
 * Rehearsals (the `rehearsals` option): dry runs of a takeover and a graceful exit through the
 * watcher's own code, in the background once start() settled. They must reach nothing real: not
 * the transport, the state file, the callbacks, the events or the logger; and shutdown() must
 * leave none of them behind. A recording transport, no sockets.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { tempWorkdir } from '../../harness/cluster.js';
import { FakeClock, Watcher, type RoleChange } from '../../src/index.js';
import { STATE_FILE_NAME } from '../../src/runtime/state-file.js';
import type { Transport } from '../../src/transport/transport.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function workdir(): string {
  const w = tempWorkdir('fw-rehearsal-');
  cleanups.push(w.cleanup);
  return w.path;
}

function recordingTransport(calls: string[]): Transport {
  return {
    open: async () => {
      calls.push('open');
    },
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
    close: async () => {
      calls.push('close');
    },
  };
}

/** Turns of the event loop until `done()`, at most `ms` of wall time; returns whether it came. */
async function until(done: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return true;
}

function scratchFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name !== STATE_FILE_NAME);
}

it('runs every rehearsal without touching the transport, the state file, the callbacks, the events or the logger', async () => {
  const dir = workdir();
  const calls: string[] = [];
  const promotes: number[] = [];
  const demotes: number[] = [];
  const logs: string[] = [];
  const note = (m: string): void => void logs.push(m);
  // A fake clock that nobody advances: the rehearsals must not depend on this watcher's clock.
  const watcher = new Watcher(
    {
      endpoint: 'ipc://@fw-rehearsal-unit-1',
      workdir: dir,
      instanceId: 'real',
      role: 'primary',
      heartbeatInterval: 100,
      heartbeatTimeout: 300,
      rehearsals: 6,
      clock: new FakeClock(),
      logger: { debug: note, info: note, warn: note, error: note },
      onPromote: ({ epoch }) => void promotes.push(epoch),
      onDemote: ({ epoch }) => void demotes.push(epoch),
    },
    { transport: recordingTransport(calls) },
  );
  const changes: RoleChange[] = [];
  watcher.on('roleChanged', (c) => changes.push(c));
  await watcher.start();
  const record = readFileSync(join(dir, STATE_FILE_NAME), 'utf8');
  const callsAtStart = [...calls];
  expect(callsAtStart).toEqual(['open', 'bind', 'publish', 'publish']);

  expect(await until(() => watcher.status().rehearsals === 6)).toBe(true);
  // The scratch state file is gone once they are done (removed before the count is final).
  expect(await until(() => scratchFiles(dir).length === 0)).toBe(true);

  expect(calls).toEqual(callsAtStart);
  expect(readFileSync(join(dir, STATE_FILE_NAME), 'utf8')).toBe(record);
  expect(promotes).toEqual([1]);
  expect(demotes).toEqual([]);
  expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['starting->primary']);
  expect(logs.filter((m) => m.includes('rehearsal'))).toEqual([]);
  expect(watcher.role).toBe('primary');
  expect(watcher.epoch).toBe(1);

  await watcher.shutdown();
  expect(demotes).toEqual([1]);
  expect(watcher.status().rehearsals).toBe(6);
});

it('shutdown() stops the rehearsals and resolves only after the one under way, leaving no scratch file', async () => {
  const dir = workdir();
  const watcher = new Watcher(
    { endpoint: 'ipc://@fw-rehearsal-unit-2', workdir: dir, role: 'secondary', heartbeatInterval: 100, heartbeatTimeout: 300, rehearsals: 10_000 },
    { transport: recordingTransport([]) },
  );
  await watcher.start();
  expect(await until(() => watcher.status().rehearsals >= 3)).toBe(true);
  expect(scratchFiles(dir)).toHaveLength(1);
  await watcher.shutdown();
  const done = watcher.status().rehearsals;
  expect(done).toBeLessThan(10_000);
  expect(scratchFiles(dir)).toEqual([]);
  // Nothing runs on after shutdown() resolved.
  for (let i = 0; i < 50; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  expect(watcher.status().rehearsals).toBe(done);
  expect(scratchFiles(dir)).toEqual([]);
});

it('rehearsals: 0 runs none and creates no scratch file', async () => {
  const dir = workdir();
  const watcher = new Watcher(
    { endpoint: 'ipc://@fw-rehearsal-unit-3', workdir: dir, role: 'secondary', heartbeatInterval: 100, heartbeatTimeout: 300, rehearsals: 0 },
    { transport: recordingTransport([]) },
  );
  await watcher.start();
  for (let i = 0; i < 50; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(scratchFiles(dir)).toEqual([]);
  }
  expect(watcher.status().rehearsals).toBe(0);
  await watcher.shutdown();
});

it('a watcher shut down before start() settled never rehearses', async () => {
  const dir = workdir();
  const watcher = new Watcher(
    { endpoint: 'ipc://@fw-rehearsal-unit-4', workdir: dir, role: 'secondary', heartbeatInterval: 100, heartbeatTimeout: 300, rehearsals: 50 },
    { transport: recordingTransport([]) },
  );
  const started = watcher.start();
  await watcher.shutdown();
  await started.catch(() => undefined);
  for (let i = 0; i < 50; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  expect(watcher.status().rehearsals).toBe(0);
  expect(scratchFiles(dir)).toEqual([]);
});
