/**
 * The cluster view reducer, fed scripted inputs with explicit `now`: no sockets, no timers.
 */
import { describe, expect, it } from 'vitest';
import type { Topic, WireMessage } from '../../../src/protocol/messages.js';
import { encode, decode } from '../../../src/protocol/codec.js';
import {
  ageOf,
  initialView,
  inputFromDecode,
  isOverdue,
  primaryOf,
  RECENT_EVENTS,
  reduce,
  type ClusterView,
  type ViewInput,
} from '../../../src/cli/view/cluster-view.js';

const WALL = 1_700_000_000_000;

function message(topic: Topic, fields: Partial<WireMessage> = {}): WireMessage {
  return {
    topic,
    version: 1,
    instanceId: 'n1',
    epoch: 3,
    seq: 1,
    sentAt: 0,
    pid: 100,
    host: 'h',
    heartbeatInterval: 100,
    ...fields,
  };
}

const hb = (fields: Partial<WireMessage> = {}) => message('instance.heartbeat', fields);

/** Feeds `[input, now]` pairs; `at` is WALL + now unless the input has its own. */
function run(steps: ReadonlyArray<readonly [WireMessage | ViewInput, number]>, start: ClusterView = initialView('ipc://@t', 0)): ClusterView {
  let view = start;
  for (const [input, now] of steps) {
    const viewInput: ViewInput = 'topic' in input ? { type: 'message', message: input, at: WALL + now } : input;
    view = reduce(view, viewInput, now);
  }
  return view;
}

describe('cluster view', () => {
  it('starts connecting, with no primary and nothing counted', () => {
    const view = initialView('tcp://127.0.0.1:5555', 42);
    expect(view).toMatchObject({ endpoint: 'tcp://127.0.0.1:5555', connection: 'connecting', primary: undefined, startedNow: 42 });
    expect(view.counts).toEqual({ heartbeats: 0, promoted: 0, shutdowns: 0, gaps: 0 });
    expect(view.dropped.total).toBe(0);
    expect(view.emitted).toEqual([]);
  });

  it('follows connection changes without emitting events', () => {
    const view = run([[{ type: 'connection', state: 'connected', at: WALL }, 1]]);
    expect(view.connection).toBe('connected');
    expect(run([[{ type: 'connection', state: 'disconnected', at: WALL }, 2]], view).connection).toBe('disconnected');
    expect(view.emitted).toEqual([]);
  });

  it('makes the sender of a heartbeat the primary and emits a heartbeat event stamped with the local receive time', () => {
    const view = run([[hb({ seq: 17, sentAt: 5, members: [['s1', 2]] }), 10]]);
    expect(view.primary).toBe('n1');
    expect(primaryOf(view)).toMatchObject({ instanceId: 'n1', epoch: 3, seq: 17, pid: 100, host: 'h', heartbeatInterval: 100, heartbeats: 1 });
    expect(view.emitted).toEqual([
      {
        event: 'heartbeat',
        instanceId: 'n1',
        epoch: 3,
        seq: 17,
        pid: 100,
        host: 'h',
        at: WALL + 10,
        heartbeatInterval: 100,
        members: [{ instanceId: 's1', priority: 2 }],
      },
      { event: 'primaryChanged', instanceId: 'n1', epoch: 3, seq: 17, pid: 100, host: 'h', at: WALL + 10, previous: null, ttlMs: null, metadata: {} },
    ]);
    expect(view.counts.heartbeats).toBe(1);
  });

  it('makes the sender of instance.promoted the primary', () => {
    const view = run([
      [hb(), 0],
      [message('instance.promoted', { instanceId: 'n2', epoch: 4, pid: 200, seq: 1 }), 5],
    ]);
    expect(view.primary).toBe('n2');
    expect(view.emitted).toMatchObject([
      { event: 'promoted', instanceId: 'n2', epoch: 4 },
      { event: 'primaryChanged', instanceId: 'n2', epoch: 4, previous: 'n1' },
    ]);
    expect(view.counts.promoted).toBe(1);
  });

  it("clears the primary on its shutdown and remembers who left until someone announces", () => {
    const left = run([
      [hb({ seq: 1 }), 0],
      [message('instance.shutdown', { seq: 2 }), 50],
    ]);
    expect(left.primary).toBeUndefined();
    expect(left.lastShutdown).toEqual({ instanceId: 'n1', epoch: 3, seenNow: 50 });
    expect(left.emitted).toMatchObject([{ event: 'shutdown', instanceId: 'n1', seq: 2 }]);
    expect(left.counts.shutdowns).toBe(1);

    const next = run([[message('instance.promoted', { instanceId: 'n2', epoch: 4, pid: 200 }), 60]], left);
    expect(next.primary).toBe('n2');
    expect(next.lastShutdown).toBeUndefined();
  });

  it('keeps the primary when another node says goodbye', () => {
    const view = run([
      [hb(), 0],
      [message('instance.shutdown', { instanceId: 'old', pid: 7 }), 10],
    ]);
    expect(view.primary).toBe('n1');
    expect(view.lastShutdown).toBeUndefined();
  });

  it('reports a late gap when a heartbeat comes more than 1.5x the announced interval after the previous one', () => {
    const onTime = run([
      [hb({ seq: 1 }), 1000],
      [hb({ seq: 2 }), 1150],
    ]);
    expect(onTime.emitted.map((e) => e.event)).toEqual(['heartbeat']);
    expect(onTime.counts.gaps).toBe(0);

    const late = run([
      [hb({ seq: 1 }), 1000],
      [hb({ seq: 2 }), 1151],
    ]);
    expect(late.emitted).toEqual([
      { event: 'gap', kind: 'late', instanceId: 'n1', epoch: 3, seq: 2, pid: 100, host: 'h', at: WALL + 1151, silentMs: 151, heartbeatInterval: 100 },
      expect.objectContaining({ event: 'heartbeat', seq: 2 }),
    ]);
    expect(late.counts.gaps).toBe(1);
  });

  it('reports the silence of a late gap rounded to the millisecond', () => {
    const view = run([
      [hb({ seq: 1 }), 0.25],
      [hb({ seq: 2 }), 300.875],
    ]);
    expect(view.emitted[0]).toMatchObject({ event: 'gap', kind: 'late', silentMs: 301 });
  });

  it("judges lateness by local time only, never by the sender's sentAt", () => {
    const view = run([
      [hb({ seq: 1, sentAt: 0 }), 0],
      [hb({ seq: 2, sentAt: 10_000_000 }), 100],
    ]);
    expect(view.counts.gaps).toBe(0);
  });

  it('uses the interval announced earlier when a heartbeat does not carry one, and none when never announced', () => {
    const remembered = run([
      [hb({ seq: 1 }), 0],
      [hb({ seq: 2, heartbeatInterval: undefined }), 500],
    ]);
    expect(remembered.emitted).toMatchObject([{ event: 'gap', kind: 'late', heartbeatInterval: 100 }, { event: 'heartbeat', heartbeatInterval: null }]);

    const never = run([
      [hb({ seq: 1, heartbeatInterval: undefined }), 0],
      [hb({ seq: 2, heartbeatInterval: undefined }), 50_000],
    ]);
    expect(never.counts.gaps).toBe(0);
  });

  it('reports a seq gap when the same process skips sequence numbers', () => {
    const view = run([
      [hb({ seq: 5 }), 0],
      [hb({ seq: 8 }), 100],
    ]);
    expect(view.emitted).toEqual([
      expect.objectContaining({ event: 'gap', kind: 'seq', seq: 8, expectedSeq: 6, missed: 2 }),
      expect.objectContaining({ event: 'heartbeat', seq: 8 }),
    ]);
  });

  it('reports both gaps of one heartbeat, seq first', () => {
    const view = run([
      [hb({ seq: 5 }), 0],
      [hb({ seq: 9 }), 1000],
    ]);
    expect(view.emitted.map((e) => (e.event === 'gap' ? `gap:${e.kind}` : e.event))).toEqual(['gap:seq', 'gap:late', 'heartbeat']);
    expect(view.counts.gaps).toBe(2);
  });

  it('counts shutdown and promoted in the sequence: seq runs across all topics of a process', () => {
    const view = run([
      [message('instance.promoted', { seq: 1 }), 0],
      [hb({ seq: 2 }), 10],
      [message('instance.shutdown', { seq: 3 }), 20],
    ]);
    expect(view.counts.gaps).toBe(0);
  });

  it('treats a new pid as a restart: no seq gap, no late gap, counters start over', () => {
    const view = run([
      [hb({ seq: 50, pid: 100 }), 0],
      [hb({ seq: 1, pid: 101 }), 10_000],
      [hb({ seq: 2, pid: 101 }), 10_100],
    ]);
    expect(view.counts.gaps).toBe(0);
    expect(primaryOf(view)).toMatchObject({ pid: 101, heartbeats: 2 });
  });

  it('does not call the first heartbeat after a sender came back from a shutdown late', () => {
    const view = run([
      [hb({ seq: 1 }), 0],
      [message('instance.shutdown', { seq: 2 }), 10],
      [hb({ seq: 3 }), 60_000],
    ]);
    expect(view.counts.gaps).toBe(0);
    expect(view.primary).toBe('n1');
  });

  it('measures lateness from any message of the sender, promoted included', () => {
    const view = run([
      [hb({ seq: 1 }), 0],
      [message('instance.promoted', { seq: 2 }), 140],
      [hb({ seq: 3 }), 200],
    ]);
    expect(view.counts.gaps).toBe(0);
  });

  it('counts dropped messages in all and by reason, with an event carrying the reason', () => {
    let view = initialView('ipc://@t', 0);
    const bad = decode([Buffer.from('instance.heartbeat')]);
    view = reduce(view, inputFromDecode(bad, WALL), 1);
    view = reduce(view, { type: 'dropped', reason: 'msgpack', detail: 'x', at: WALL + 2 }, 2);
    expect(view.dropped).toMatchObject({ total: 2, frames: 1, msgpack: 1, shape: 0 });
    expect(view.emitted).toEqual([
      { event: 'dropped', instanceId: null, epoch: null, seq: null, pid: null, host: null, at: WALL + 2, reason: 'msgpack', detail: 'x', dropped: 2 },
    ]);
    expect(view.primary).toBeUndefined();
  });

  it('turns a valid decode into a message input', () => {
    const frames = encode('instance.heartbeat', { version: 1, instanceId: 'n9', epoch: 1, seq: 1, sentAt: 1, pid: 9, host: 'h' });
    expect(inputFromDecode(decode(frames), WALL)).toMatchObject({ type: 'message', at: WALL, message: { instanceId: 'n9' } });
  });

  it(`keeps the last ${RECENT_EVENTS} events, oldest first, and empties emitted on inputs that emit nothing`, () => {
    const steps = Array.from({ length: 20 }, (_, i) => [hb({ seq: i + 1 }), i * 10] as const);
    const view = run(steps);
    expect(view.recent).toHaveLength(RECENT_EVENTS);
    expect(view.recent.map((e) => e.seq)).toEqual([13, 14, 15, 16, 17, 18, 19, 20]);
    expect(run([[{ type: 'connection', state: 'connected', at: WALL }, 300]], view).emitted).toEqual([]);
  });

  it('computes ages and overdue from now', () => {
    const view = run([[hb(), 1000]]);
    const p = primaryOf(view)!;
    expect(ageOf(p, 1100)).toBe(100);
    expect(ageOf(p, 900)).toBe(0);
    expect(isOverdue(p, 1150)).toBe(false);
    expect(isOverdue(p, 1151)).toBe(true);
  });

  it('is pure: never changes the view it is given', () => {
    const before = run([
      [hb({ seq: 1 }), 0],
      [{ type: 'dropped', reason: 'shape', detail: 'x', at: WALL }, 5],
    ]);
    const snapshot = structuredClone(before);
    const inputs: ViewInput[] = [
      { type: 'message', message: hb({ seq: 9 }), at: WALL },
      { type: 'message', message: message('instance.shutdown', { seq: 10 }), at: WALL },
      { type: 'dropped', reason: 'topic', detail: 'y', at: WALL },
      { type: 'connection', state: 'disconnected', at: WALL },
    ];
    for (const input of inputs) {
      const a = reduce(before, input, 1000);
      const b = reduce(before, input, 1000);
      expect(a).toEqual(b);
      expect(before).toEqual(snapshot);
    }
  });
});

describe('cluster view: a stolen endpoint', () => {
  it('reports endpointStolen once, when a primary first says so', () => {
    const first = run([[hb({ seq: 1 }), 0], [hb({ seq: 2, endpointStolen: 'replaced' }), 100]]);
    expect(first.emitted).toEqual([
      expect.objectContaining({ event: 'heartbeat', seq: 2, endpointStolen: 'replaced' }),
      { event: 'endpointStolen', instanceId: 'n1', epoch: 3, seq: 2, pid: 100, host: 'h', at: WALL + 100, found: 'replaced' },
    ]);
    expect(primaryOf(first)?.endpointStolen).toBe('replaced');
    const again = run([[hb({ seq: 3, endpointStolen: 'replaced' }), 200]], first);
    expect(again.emitted.map((e) => e.event)).toEqual(['heartbeat']);
    // A heartbeat without it (a new term, a restarted process) clears it.
    const cleared = run([[hb({ seq: 4 }), 300]], again);
    expect(primaryOf(cleared)?.endpointStolen).toBeUndefined();
    expect(cleared.emitted[0]).not.toHaveProperty('endpointStolen');
  });
});

describe('primaryChanged (ZeroMQ)', () => {
  // The same event a lease backend's watch reports, so that one filter follows either backend.
  it('once per primary and epoch, naming the one before', () => {
    let v = initialView('e', 0);
    const at = (input: ViewInput, now: number) => (v = reduce(v, input, now)).emitted.filter((e) => e.event === 'primaryChanged');
    expect(at({ type: 'message', message: message('instance.heartbeat', { seq: 1 }), at: WALL }, 0)).toMatchObject([{ instanceId: 'n1', epoch: 3, previous: null }]);
    expect(at({ type: 'message', message: message('instance.heartbeat', { seq: 2 }), at: WALL }, 100)).toEqual([]);
    expect(at({ type: 'message', message: message('instance.shutdown', { seq: 3 }), at: WALL }, 150)).toEqual([]);
    const next = message('instance.promoted', { instanceId: 'n2', epoch: 4, pid: 200, seq: 1 });
    expect(at({ type: 'message', message: next, at: WALL }, 160)).toMatchObject([{ instanceId: 'n2', epoch: 4, pid: 200, previous: 'n1', ttlMs: null }]);
    expect(at({ type: 'message', message: { ...next, topic: 'instance.heartbeat', seq: 2 }, at: WALL }, 200)).toEqual([]);
  });
});

describe('lease inputs (Redis)', () => {
  const lease = (nodeId: string | undefined, revision = 1, ttlMs = 900, at = WALL): ViewInput => ({
    type: 'lease',
    leader: nodeId === undefined ? undefined : { nodeId, revision, priority: 1, ttlMs },
    at,
  });

  it('reports each holder and revision once as primaryChanged', () => {
    let v = initialView('redis://127.0.0.1:6379 p', 0);
    v = reduce(v, lease('a', 1), 1);
    expect(v.emitted).toEqual([
      { event: 'primaryChanged', instanceId: 'a', epoch: 1, seq: null, pid: null, host: null, at: WALL, previous: null, ttlMs: 900, metadata: {} },
    ]);
    v = reduce(v, lease('a', 1, 700, WALL + 250), 250);
    expect(v.emitted).toEqual([]);
    expect(v.lease).toMatchObject({ nodeId: 'a', ttlMs: 700, seenNow: 250, sinceAt: WALL });
    v = reduce(v, lease('a', 2, 900, WALL + 500), 500);
    expect(v.emitted).toMatchObject([{ event: 'primaryChanged', instanceId: 'a', epoch: 2, previous: 'a' }]);
  });

  it('reports a free lease as primaryLost, then the successor', () => {
    let v = reduce(initialView('e', 0), lease('a', 1), 1);
    v = reduce(v, lease(undefined, 0, 0, WALL + 10), 10);
    expect(v.emitted).toEqual([{ event: 'primaryLost', instanceId: 'a', epoch: 1, seq: null, pid: null, host: null, at: WALL + 10 }]);
    expect(v.lease).toBeUndefined();
    v = reduce(v, lease(undefined, 0, 0, WALL + 20), 20);
    expect(v.emitted).toEqual([]);
    v = reduce(v, lease('b', 2, 1000, WALL + 30), 30);
    expect(v.emitted).toMatchObject([{ event: 'primaryChanged', instanceId: 'b', epoch: 2, previous: 'a' }]);
    expect(v.recent.map((e) => e.event)).toEqual(['primaryChanged', 'primaryLost', 'primaryChanged']);
  });
});

describe('primary metadata in the view', () => {
  it('carries it in primaryChanged and reports a change', () => {
    let v = run([[hb({ seq: 1, metadata: { port: '7001' } }), 0]]);
    expect(v.emitted.find((e) => e.event === 'primaryChanged')).toMatchObject({ instanceId: 'n1', metadata: { port: '7001' } });
    expect(primaryOf(v)?.metadata).toEqual({ port: '7001' });
    v = run([[hb({ seq: 2, metadata: { port: '7001' } }), 100]], v);
    expect(v.emitted.map((e) => e.event)).toEqual(['heartbeat']);
    v = run([[hb({ seq: 3, metadata: { port: '8001' } }), 200]], v);
    expect(v.emitted.find((e) => e.event === 'primaryMetadataChanged')).toMatchObject({ instanceId: 'n1', epoch: 3, metadata: { port: '8001' } });
    // A heartbeat without metadata announces none: that is a change too.
    v = run([[hb({ seq: 4 }), 300]], v);
    expect(v.emitted.find((e) => e.event === 'primaryMetadataChanged')).toMatchObject({ metadata: {} });
  });

  it('keeps the last metadata when a message had it dropped', () => {
    let v = run([[hb({ seq: 1, metadata: { port: '7001' } }), 0]]);
    v = run([[hb({ seq: 2, metadataRejected: 'a value over 256 bytes' }), 100]], v);
    expect(v.emitted.map((e) => e.event)).toEqual(['heartbeat']);
    expect(primaryOf(v)?.metadata).toEqual({ port: '7001' });
  });

  it('reports a lease holder metadata and its changes', () => {
    const lease = (metadata: Record<string, string> | null | undefined, now: number): ViewInput => ({
      type: 'lease',
      leader: { nodeId: 'a', revision: 1, priority: 1, ttlMs: 900, ...(metadata === undefined ? {} : { metadata }) },
      at: WALL + now,
    });
    let v = reduce(initialView('e', 0), lease({ port: '7001' }, 0), 0);
    expect(v.emitted).toMatchObject([{ event: 'primaryChanged', instanceId: 'a', metadata: { port: '7001' } }]);
    v = reduce(v, lease({ port: '7001' }, 10), 10);
    expect(v.emitted).toEqual([]);
    // Dropped (null) or not read: no news.
    v = reduce(v, lease(null, 20), 20);
    expect(v.emitted).toEqual([]);
    expect(v.lease?.metadata).toEqual({ port: '7001' });
    v = reduce(v, lease({ port: '8001' }, 30), 30);
    expect(v.emitted).toEqual([
      { event: 'primaryMetadataChanged', instanceId: 'a', epoch: 1, seq: null, pid: null, host: null, at: WALL + 30, metadata: { port: '8001' } },
    ]);
  });
});
