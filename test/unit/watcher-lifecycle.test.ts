/**
 * The watcher's lifecycle around a start() that failed: the watcher closes itself, and a
 * shutdown() that comes after (a SIGTERM handler, `await using`, a finally block) still settles.
 * A scripted transport, no sockets.
 */
import { afterEach, expect, it } from 'vitest';
import { tempWorkdir } from '../../harness/cluster.js';
import { Watcher } from '../../src/index.js';
import type { BindOutcome, Transport } from '../../src/transport/transport.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function workdir(): string {
  const w = tempWorkdir('fw-lifecycle-');
  cleanups.push(w.cleanup);
  return w.path;
}

function transport(bind: BindOutcome, calls: string[]): Transport {
  return {
    open: async () => undefined,
    probe: () => undefined,
    bind: async () => bind,
    publish: async () => undefined,
    release: async () => undefined,
    close: async () => {
      calls.push('close');
    },
    counters: () => ({ peersRefused: 0, subscriptionsIgnored: 0, handshakesFailed: 0, reconnects: 0 }),
  };
}

/** Settles within `ms`, or says it did not. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([p.then(() => true), late]);
  clearTimeout(timer);
  return result;
}

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

it('shutdown() after a start() that failed (endpoint in use, onPromote rejected) resolves, and again returns the same promise', async () => {
  const cases: Array<{ name: string; bind: BindOutcome; onPromote?: () => Promise<void> }> = [
    { name: 'in use', bind: { outcome: 'in-use' } },
    { name: 'onPromote rejected', bind: { outcome: 'bound' }, onPromote: () => Promise.reject(new Error('no database')) },
  ];
  for (const c of cases) {
    const calls: string[] = [];
    const watcher = new Watcher(
      {
        endpoint: `ipc://@fw-lifecycle-unit-${c.name.replace(/ /g, '-')}`,
        workdir: workdir(),
        role: 'primary',
        heartbeatInterval: 100,
        heartbeatTimeout: 300,
        shutdownTimeout: 10_000,
        ...(c.onPromote !== undefined ? { onPromote: c.onPromote } : {}),
      },
      { transport: transport(c.bind, calls) },
    );
    const started = watcher.start();
    await expect(started, c.name).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_FAILOVER_/) });
    // The watcher has closed itself by now.
    await turns(5);
    expect(calls, c.name).toEqual(['close']);
    expect(watcher.role, c.name).toBe('stopped');
    const first = watcher.shutdown();
    expect(await settlesWithin(first, 2000), c.name).toBe(true);
    expect(watcher.shutdown(), c.name).toBe(first);
    expect(calls, c.name).toEqual(['close']);
  }
});
