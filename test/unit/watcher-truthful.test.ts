/**
 * The watcher's driver around observers and stolen socket files, with a scripted transport (no
 * sockets): an observer opens without a presence topic and never asks for a bind; a transport's
 * `endpointStolen` reaches the event, status() and the heartbeats on the wire.
 */
import { afterEach, expect, it } from 'vitest';
import { tempWorkdir } from '../../harness/cluster.js';
import { Watcher, type EndpointStolenEvent } from '../../src/index.js';
import { decode } from '../../src/protocol/codec.js';
import type { Frames, Transport, TransportHandlers } from '../../src/transport/transport.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function workdir(): string {
  const w = tempWorkdir('fw-truthful-');
  cleanups.push(w.cleanup);
  return w.path;
}

interface Script {
  transport: Transport;
  opened: { presence: string | undefined } | undefined;
  binds: number;
  handlers: TransportHandlers | undefined;
  published: Frames[];
  onPublish: (() => void) | undefined;
}

function scripted(): Script {
  const script: Script = {
    opened: undefined,
    binds: 0,
    handlers: undefined,
    published: [],
    onPublish: undefined,
    transport: {
      open: async (handlers, presence) => {
        script.handlers = handlers;
        script.opened = { presence };
      },
      probe: () => undefined,
      bind: async () => {
        script.binds++;
        return { outcome: 'bound' };
      },
      publish: async (frames) => {
        script.published.push(frames);
        script.onPublish?.();
      },
      release: async () => undefined,
      close: async () => undefined,
    },
  };
  return script;
}

const notLocal = { isLocalAddress: (a: string) => a === '127.0.0.1', lookup: async () => [] };

it('an observer opens with no presence topic and never binds', async () => {
  const s = scripted();
  const w = new Watcher(
    { endpoint: 'tcp://127.0.0.2:5999', workdir: workdir(), role: 'auto', enabled: true, heartbeatInterval: 100, heartbeatTimeout: 300, rehearsals: 0 },
    { transport: s.transport, locality: notLocal },
  );
  cleanups.unshift(() => w.shutdown());
  await w.start();
  expect(w.role).toBe('secondary');
  expect(s.opened).toEqual({ presence: undefined });
  expect(s.binds).toBe(0);
  expect(w.status()).toMatchObject({ observer: true, enabled: true });
  expect(await w.liveNodes()).toEqual([expect.objectContaining({ self: true, eligible: false, role: 'secondary' })]);
});

it('an observer started as primary fails without a bind', async () => {
  const s = scripted();
  const w = new Watcher(
    { endpoint: 'tcp://127.0.0.2:5999', workdir: workdir(), role: 'primary', heartbeatInterval: 100, heartbeatTimeout: 300 },
    { transport: s.transport, locality: notLocal },
  );
  cleanups.unshift(() => w.shutdown());
  await expect(w.start()).rejects.toMatchObject({ code: 'ERR_FAILOVER_TRANSPORT', message: expect.stringContaining('not an address of this host') });
  expect(s.binds).toBe(0);
});

it('a local node announces its presence and binds as before', async () => {
  const s = scripted();
  const w = new Watcher(
    { endpoint: 'tcp://127.0.0.1:5999', instanceId: 'n', workdir: workdir(), role: 'auto', heartbeatInterval: 100, heartbeatTimeout: 300 },
    { transport: s.transport, locality: notLocal },
  );
  cleanups.unshift(() => w.shutdown());
  await w.start();
  expect(s.opened).toEqual({ presence: 'presence.1.n' });
  expect(s.binds).toBe(1);
  expect(w.status().observer).toBe(false);
});

it("endpointStolen reaches the event, status(), heartbeats", async () => {
  const s = scripted();
  const dir = workdir();
  const path = `${dir}/x.sock`;
  const w = new Watcher({ endpoint: `ipc://${path}`, workdir: dir, role: 'primary', heartbeatInterval: 50, heartbeatTimeout: 300 }, { transport: s.transport });
  cleanups.unshift(() => w.shutdown());
  await w.start();
  const events: EndpointStolenEvent[] = [];
  w.on('endpointStolen', (e) => void events.push(e));
  s.handlers?.onEvent({ type: 'endpointStolen', found: 'gone', detail: `no file at ${path} any more` });
  expect(w.status().endpointStolen).toMatchObject({ path, found: 'gone', detail: `no file at ${path} any more` });
  // The next heartbeat carries it.
  const before = s.published.length;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no heartbeat within 2 s')), 2000);
    s.onPublish = () => {
      if (s.published.length > before) (clearTimeout(timer), resolve());
    };
  });
  const beat = decode(s.published[s.published.length - 1] as Frames);
  expect(beat).toMatchObject({ ok: true, message: { topic: 'instance.heartbeat', endpointStolen: 'gone' } });
  expect(events).toEqual([{ endpoint: `ipc://${path}`, path, found: 'gone', detail: `no file at ${path} any more`, at: expect.any(Number) }]);
  expect(w.role).toBe('primary');
});
