/**
 * The heartbeat machine and application metadata (PROTOCOL.md section 11), on a fake time:
 * who is told what, and that a peer's bad metadata changes nothing but the metadata.
 */
import { describe, expect, it } from 'vitest';
import {
  initialState,
  step,
  type Effect,
  type Input,
  type MachineConfig,
  type MachineState,
  type Notification,
} from '../../../src/core/heartbeat-machine.js';
import type { WireMessage } from '../../../src/protocol/messages.js';
import { TEST_MACHINE_CONFIG } from './machine-config.js';

const WALL = 1_700_000_000_000;

class Driver {
  now = 0;
  state: MachineState;

  constructor(overrides: Partial<MachineConfig> = {}) {
    this.state = initialState({ ...TEST_MACHINE_CONFIG, ...overrides }, true, 0);
  }

  send(input: Input): Effect[] {
    const { state, effects } = step(this.state, input, { now: this.now, random: () => 0.5 });
    this.state = state;
    return [...effects];
  }

  /** Moves the time to `t`, ticking at every `wakeAt` on the way (at most 1000 ticks). */
  advanceTo(t: number): Effect[] {
    const out: Effect[] = [];
    for (let i = 0; i < 1000; i++) {
      const at = this.state.wakeAt;
      if (at === undefined || at > t) break;
      this.now = Math.max(this.now, at);
      out.push(...this.send({ type: 'tick' }));
    }
    this.now = t;
    return out;
  }
}

function hb(from: string, epoch: number, extra: Partial<WireMessage> = {}): Input {
  return {
    type: 'message',
    wallNow: WALL,
    message: { version: 1, topic: 'instance.heartbeat', instanceId: from, epoch, seq: 1, sentAt: WALL, pid: 4242, host: 'host-1', ...extra },
  };
}

const notes = (effects: readonly Effect[]): Notification[] => effects.flatMap((e) => (e.type === 'notify' ? [e.notification] : []));
const binds = (effects: readonly Effect[]): number => effects.filter((e) => e.type === 'bind').length;

function follower(): Driver {
  const d = new Driver({ initialRole: 'secondary' });
  d.send({ type: 'start' });
  return d;
}

describe('heartbeat machine: metadata', () => {
  it('hands the new primary metadata to primaryChanged', () => {
    const d = follower();
    expect(notes(d.send(hb('p', 3, { metadata: { port: '7001' } })))).toEqual([
      { type: 'primaryChanged', instanceId: 'p', epoch: 3, pid: 4242, host: 'host-1', metadata: { port: '7001' } },
    ]);
    expect(d.state.primary?.metadata).toEqual({ port: '7001' });
  });

  it('tells a same-primary metadata change once', () => {
    const d = follower();
    d.send(hb('p', 3, { metadata: { port: '7001' } }));
    d.now = 50;
    expect(notes(d.send(hb('p', 3, { metadata: { port: '7001' } })))).toEqual([]);
    d.now = 100;
    expect(notes(d.send(hb('p', 3, { metadata: { port: '7002' } })))).toEqual([
      { type: 'primaryMetadataChanged', instanceId: 'p', epoch: 3, metadata: { port: '7002' } },
    ]);
    d.now = 150;
    // A heartbeat without the field announces none.
    expect(notes(d.send(hb('p', 3)))).toEqual([{ type: 'primaryMetadataChanged', instanceId: 'p', epoch: 3, metadata: undefined }]);
  });

  it('keeps the last metadata when a peer sends a bad one', () => {
    const d = follower();
    d.send(hb('p', 3, { metadata: { port: '7001' } }));
    d.now = 50;
    expect(notes(d.send(hb('p', 3, { metadataRejected: 'metadata: expected at most 16 keys' })))).toEqual([]);
    expect(d.state.primary?.metadata).toEqual({ port: '7001' });
    expect(d.state.counters.heartbeatsSeen).toBe(2);
  });

  it('a bad metadata still counts as a heartbeat: no takeover', () => {
    const d = follower();
    let bound = 0;
    // 2000 ms of heartbeats every 100 ms (timeout 300 ms), each with dropped metadata.
    for (let t = 0; t <= 2000; t += 100) {
      bound += binds(d.advanceTo(t));
      const effects = d.send(hb('p', 3, { seq: t + 1, metadataRejected: 'metadata key "a b": expected a key' }));
      bound += binds(effects);
      expect(notes(effects).filter((n) => n.type === 'primaryLost')).toEqual([]);
    }
    expect(bound).toBe(0);
    expect(d.state.role).toBe('secondary');
    expect(d.state.primary?.instanceId).toBe('p');
    expect(d.state.primary?.metadata).toBeUndefined();
  });

  it('a new primary with bad metadata has none', () => {
    const d = follower();
    d.send(hb('p', 3, { metadata: { port: '7001' } }));
    d.now = 50;
    const changed = notes(d.send(hb('q', 4, { metadataRejected: 'bad' })));
    expect(changed).toEqual([{ type: 'primaryChanged', instanceId: 'q', epoch: 4, pid: 4242, host: 'host-1' }]);
    expect(d.state.primary?.metadata).toBeUndefined();
  });

  it('a primary announces new metadata with one extra heartbeat', () => {
    const d = new Driver({ initialRole: 'auto' });
    d.send({ type: 'start' });
    d.send({ type: 'bindResult', outcome: 'bound' });
    d.send({ type: 'epochLoaded', fileEpoch: 0 });
    d.send({ type: 'stateSaved', ok: true });
    d.send({ type: 'promoteSettled', term: 1, ok: true });
    expect(d.state.role).toBe('primary');
    d.now = 30;
    const first = d.send({ type: 'metadataUpdated' }).filter((e) => e.type === 'publish');
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ topic: 'instance.heartbeat' });
    // A second update within 10 ms waits for the same gap as a welcome.
    d.now = 32;
    expect(d.send({ type: 'metadataUpdated' }).filter((e) => e.type === 'publish')).toHaveLength(0);
    const later = d.advanceTo(45).filter((e) => e.type === 'publish');
    expect(later).toHaveLength(1);
  });

  it('a secondary ignores its own metadata update', () => {
    const d = follower();
    d.send(hb('p', 3));
    expect(d.send({ type: 'metadataUpdated' }).filter((e) => e.type === 'publish' || e.type === 'notify')).toEqual([]);
  });
});
