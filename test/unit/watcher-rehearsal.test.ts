/**
 * Rehearsals (the `rehearsals` option): dry runs of a takeover and a graceful exit through the
 * watcher's own code, in the background once start() settled. They must reach nothing real: not
 * the transport, the state file, the callbacks, the events or the logger; and shutdown() must
 * leave none of them behind. A recording transport, no sockets.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { tempWorkdir } from '../../harness/cluster.js';
import { FakeClock, Watcher, type RoleChange } from '../../src/index.js';
import { STATE_FILE_NAME } from '../../src/runtime/state-file.js';
import { encode } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function workdir(): string {
  const w = tempWorkdir('fw-rehearsal-');
  cleanups.push(w.cleanup);
  return w.path;
}

function recordingTransport(calls: string[], onOpen?: (handlers: TransportHandlers) => void): Transport {
  return {
    open: async (handlers) => {
      calls.push('open');
      onOpen?.(handlers);
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

it('rehearses only as a secondary, and touches neither the transport, the state file, the callbacks, the events nor the logger', async () => {
  const dir = workdir();
  const calls: string[] = [];
  let handlers: TransportHandlers | undefined;
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
    { transport: recordingTransport(calls, (h) => (handlers = h)) },
  );
  const changes: RoleChange[] = [];
  watcher.on('roleChanged', (c) => changes.push(c));
  await watcher.start();
  expect(calls).toEqual(['open', 'bind', 'publish', 'publish']);
  // None as primary.
  for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  expect(watcher.status().rehearsals).toBe(0);

  // A secondary once it stepped down and follows the next primary.
  watcher.stepDown();
  expect(await until(() => watcher.role === 'secondary' && demotes.length === 1)).toBe(true);
  for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  expect(watcher.status().rehearsals).toBe(0);
  handlers?.onMessage(
    encode('instance.heartbeat', { version: PROTOCOL_VERSION, instanceId: 'next', epoch: 2, seq: 1, sentAt: Date.now(), pid: 1, host: 'h', heartbeatInterval: 100 }),
  );
  expect(watcher.status().primary?.instanceId).toBe('next');
  const record = readFileSync(join(dir, STATE_FILE_NAME), 'utf8');
  const callsBefore = [...calls];
  expect(await until(() => watcher.status().rehearsals === 6)).toBe(true);
  // The scratch state file goes right after the last one (in the same tick).
  expect(await until(() => scratchFiles(dir).length === 0)).toBe(true);

  expect(calls).toEqual(callsBefore);
  expect(readFileSync(join(dir, STATE_FILE_NAME), 'utf8')).toBe(record);
  expect(promotes).toEqual([1]);
  expect(demotes).toEqual([1]);
  expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['starting->primary', 'primary->secondary']);
  expect(logs.filter((m) => m.includes('rehearsal'))).toEqual([]);
  expect(watcher.role).toBe('secondary');
  expect(watcher.epoch).toBe(2);

  await watcher.shutdown();
  expect(watcher.status().rehearsals).toBe(6);
});

// shutdown() at different points of the rehearsals (between two, or some turns into one): it
// resolves only once the one under way has finished and the scratch file is gone. (A test cannot
// force shutdown() to finish before the rehearsal under way: shutdown() also waits for that in
// code, which this test alone would not catch missing.)
it.each([0, 1, 2, 3])('shutdown() %i turns into a rehearsal stops them, after the one under way, leaving no scratch file', async (turns) => {
  const dir = workdir();
  const watcher = new Watcher(
    { endpoint: 'ipc://@fw-rehearsal-unit-2', workdir: dir, role: 'secondary', heartbeatInterval: 100, heartbeatTimeout: 300, rehearsals: 10_000 },
    { transport: recordingTransport([]) },
  );
  await watcher.start();
  expect(await until(() => watcher.status().rehearsals >= 3)).toBe(true);
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
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

it('a watcher whose scratch state file cannot be written runs no rehearsal, says so at debug level, and shuts down at once', async () => {
  // start() refuses a work directory where the state file cannot be made, so the scratch file
  // (named after the state file, ~30 characters longer) must fail on its own: the work directory
  // is nested so deep that the state file's path just fits in PATH_MAX (4096) and the scratch
  // file's does not (ENAMETOOLONG).
  let file = workdir();
  const target = 4095 - 1 - STATE_FILE_NAME.length - 5;
  while (file.length < target) file = join(file, 'd'.repeat(Math.min(200, target - file.length - 1)));
  mkdirSync(file, { recursive: true, mode: 0o700 });
  const debug: string[] = [];
  const watcher = new Watcher(
    {
      endpoint: 'ipc://@fw-rehearsal-unit-5',
      workdir: file,
      role: 'secondary',
      heartbeatInterval: 100,
      heartbeatTimeout: 300,
      logger: { debug: (m) => void debug.push(m), info: () => undefined, warn: () => undefined, error: () => undefined },
    },
    { transport: recordingTransport([]) },
  );
  await watcher.start();
  expect(await until(() => debug.some((m) => m.includes('rehearsals ended: Error: no scratch state file')))).toBe(true);
  expect(watcher.status().rehearsals).toBe(0);
  const t0 = performance.now();
  await watcher.shutdown();
  // No rehearsal left waiting for its one-second limit.
  expect(performance.now() - t0).toBeLessThan(500);
});

it('rehearses with the longest instanceId allowed (the scratch watcher has an id of its own)', async () => {
  const dir = workdir();
  const watcher = new Watcher(
    { endpoint: 'ipc://@fw-rehearsal-unit-6', workdir: dir, instanceId: 'x'.repeat(256), role: 'secondary', heartbeatInterval: 100, heartbeatTimeout: 300, rehearsals: 4 },
    { transport: recordingTransport([]) },
  );
  await watcher.start();
  expect(await until(() => watcher.status().rehearsals === 4)).toBe(true);
  await watcher.shutdown();
});

it('rehearses only at rest: not while the primary is lost, nor as the primary that took over', async () => {
  const dir = workdir();
  const calls: string[] = [];
  let handlers: TransportHandlers | undefined;
  const watcher = new Watcher(
    { endpoint: 'ipc://@fw-rehearsal-unit-7', workdir: dir, role: 'secondary', enabled: false, heartbeatInterval: 100, heartbeatTimeout: 5000, rehearsals: 4 },
    { transport: recordingTransport(calls, (h) => (handlers = h)) },
  );
  await watcher.start();
  const payload = { version: PROTOCOL_VERSION, instanceId: 'p', epoch: 1, sentAt: Date.now(), pid: 1, host: 'h', heartbeatInterval: 100 };
  // Lost before the first rehearsal could start (it waits a turn): a disabled secondary stays
  // in that state, so none runs.
  handlers?.onMessage(encode('instance.heartbeat', { ...payload, seq: 1 }));
  handlers?.onMessage(encode('instance.shutdown', { ...payload, seq: 2 }));
  expect(watcher.status().primarySuspected).toBe(true);
  for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  expect(watcher.status().rehearsals).toBe(0);
  expect(scratchFiles(dir)).toHaveLength(1);
  // Enabled, it takes over (bind, epoch, announcement, onPromote); as primary it does not rehearse.
  watcher.setEnabled(true);
  expect(await until(() => watcher.role === 'primary')).toBe(true);
  for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  expect(watcher.status().rehearsals).toBe(0);
  // A new primary with a higher epoch: it steps down, follows, and rehearses (woken by the news,
  // not by its one-second look).
  handlers?.onMessage(encode('instance.heartbeat', { ...payload, instanceId: 'q', epoch: 9, seq: 1 }));
  expect(await until(() => watcher.role === 'secondary')).toBe(true);
  expect(await until(() => watcher.status().rehearsals === 4, 900)).toBe(true);
  expect(calls.filter((c) => c === 'bind')).toEqual(['bind']);
  await watcher.shutdown();
});

it('start() after shutdown() rejects instead of waiting for ever', async () => {
  const watcher = new Watcher(
    { endpoint: 'ipc://@fw-rehearsal-unit-8', workdir: workdir(), role: 'secondary', heartbeatInterval: 100, heartbeatTimeout: 300 },
    { transport: recordingTransport([]) },
  );
  await watcher.shutdown();
  await expect(watcher.start()).rejects.toMatchObject({ code: 'ERR_FAILOVER_LIFECYCLE' });
});
