/**
 * What the machine says about who will take over, and what it does when it cannot: observers
 * (an endpoint that is not an address of this host) never bind; `primaryLost.willPromote` is true
 * only when this node is about to take over a released or dead primary's endpoint; a primary whose
 * socket file was stolen keeps its role and reports the theft. A fake clock, no sockets.
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
import type { Topic } from '../../../src/protocol/messages.js';
import { TEST_MACHINE_CONFIG } from './machine-config.js';

const WALL = 1_700_000_000_000;

class Driver {
  now = 0;
  state: MachineState;

  constructor(overrides: Partial<MachineConfig> = {}, enabled = true) {
    this.state = initialState({ ...TEST_MACHINE_CONFIG, ...overrides }, enabled);
  }

  send(input: Input): Effect[] {
    const { state, effects } = step(this.state, input, { now: this.now, random: () => 0.5 });
    this.state = state;
    return [...effects];
  }

  /** Moves the time to `t`, ticking at every `wakeAt` on the way (bounded: no busy loop). */
  advanceTo(t: number): Effect[] {
    const out: Effect[] = [];
    for (let i = 0; i < 10_000; i++) {
      const at = this.state.wakeAt;
      if (at === undefined || at > t) break;
      this.now = at;
      out.push(...this.send({ type: 'tick' }));
    }
    this.now = t;
    return out;
  }
}

function wire(topic: Topic, from: string, epoch: number, seq = 1): Input {
  return {
    type: 'message',
    wallNow: WALL,
    message: { version: 1, topic, instanceId: from, epoch, seq, sentAt: WALL, pid: 4242, host: 'host-1' },
  };
}
const hb = (from: string, epoch: number, seq = 1): Input => wire('instance.heartbeat', from, epoch, seq);
const notes = (effects: readonly Effect[]): Notification[] => effects.flatMap((e) => (e.type === 'notify' ? [e.notification] : []));
const binds = (effects: readonly Effect[]): number => effects.filter((e) => e.type === 'bind').length;
const lost = (effects: readonly Effect[]) => notes(effects).filter((n) => n.type === 'primaryLost');

/** A node started as `initialRole`, told at start that it is an observer. */
function observer(initialRole: MachineConfig['initialRole'] = 'auto', enabled = true): { d: Driver; fx: Effect[] } {
  const d = new Driver({ initialRole }, enabled);
  return { d, fx: d.send({ type: 'start', observer: true }) };
}

describe('an observer (endpoint not on this host)', () => {
  it('starts as secondary without binding', () => {
    const { d, fx } = observer('auto');
    expect(binds(fx)).toBe(0);
    expect(fx.map((e) => e.type)).toContain('started');
    expect(d.state).toMatchObject({ role: 'secondary', phase: 'secondary', observer: true });
  });

  it('as role primary, fails to start without binding', () => {
    const { d, fx } = observer('primary');
    expect(binds(fx)).toBe(0);
    expect(fx).toContainEqual(expect.objectContaining({ type: 'startFailed', reason: 'bind-failed', detail: expect.stringContaining('not an address of this host') }));
    expect(d.state.role).toBe('stopped');
  });

  it('never binds on silence, shutdown or disconnect', () => {
    const { d } = observer('secondary');
    d.advanceTo(10);
    d.send(hb('p', 3));
    const silence = d.advanceTo(5000);
    expect(lost(silence)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'silence', willPromote: false, reason: 'observer' }]);
    d.send(hb('p', 3, 2));
    const farewell = d.send(wire('instance.shutdown', 'p', 3, 3));
    expect(lost(farewell)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'shutdown', willPromote: false, reason: 'observer' }]);
    const later = [...d.send({ type: 'disconnected' }), ...d.send({ type: 'setEnabled', enabled: false }), ...d.send({ type: 'setEnabled', enabled: true }), ...d.advanceTo(60_000)];
    expect(binds([...silence, ...farewell, ...later])).toBe(0);
    expect(d.state).toMatchObject({ role: 'secondary', holdsEndpoint: false });
    expect(d.state.counters.lostRaces).toBe(0);
  });

  it('no wake-ups for takeover attempts while the primary is lost', () => {
    const { d } = observer('secondary');
    d.send(hb('p', 3));
    d.advanceTo(1000);
    expect(d.state.loss).toBeDefined();
    // Only the regular check, once per heartbeatInterval (100 ms here).
    for (let t = 1000; t <= 3000; t += 250) {
      expect(binds(d.advanceTo(t))).toBe(0);
      expect((d.state.wakeAt ?? Infinity) - d.now).toBeGreaterThan(0);
      expect((d.state.wakeAt ?? Infinity) - d.now).toBeLessThanOrEqual(100);
    }
  });
});

describe('primaryLost.willPromote', () => {
  it('silence is a suspicion: false, reason suspected', () => {
    const d = new Driver({ initialRole: 'secondary' });
    d.send({ type: 'start' });
    d.send(hb('p', 3));
    const fx = d.advanceTo(300);
    expect(lost(fx)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'silence', willPromote: false, reason: 'suspected' }]);
    // It still tries the bind: a silent primary that is gone frees the endpoint.
    expect(binds(fx)).toBe(1);
    // A hung primary still holds it: no promotion, retries every heartbeatInterval.
    d.send({ type: 'bindResult', outcome: 'in-use' });
    expect(d.state).toMatchObject({ role: 'secondary', phase: 'secondary' });
  });

  it('a shutdown with failover on: true, reason taking-over', () => {
    const d = new Driver({ initialRole: 'secondary' });
    d.send({ type: 'start' });
    d.send(hb('p', 3));
    const fx = d.send(wire('instance.shutdown', 'p', 3, 2));
    expect(lost(fx)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'shutdown', willPromote: true, reason: 'taking-over' }]);
    expect(binds(fx)).toBe(1);
  });

  it('a disconnect is declared only once the bind proved it: true', () => {
    const d = new Driver({ initialRole: 'secondary' });
    d.send({ type: 'start' });
    d.send(hb('p', 3));
    expect(lost(d.send({ type: 'disconnected' }))).toEqual([]);
    const fx = d.send({ type: 'bindResult', outcome: 'bound' });
    expect(lost(fx)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'disconnect', willPromote: true, reason: 'taking-over' }]);
  });
});

describe('a stolen socket file', () => {
  function primary(): Driver {
    const d = new Driver({ initialRole: 'primary', instanceId: 'a' });
    const queue: Input[] = [{ type: 'start' }];
    for (let input = queue.shift(); input !== undefined; input = queue.shift()) {
      for (const e of d.send(input)) {
        if (e.type === 'bind') queue.push({ type: 'bindResult', outcome: 'bound' });
        if (e.type === 'loadEpoch') queue.push({ type: 'epochLoaded', fileEpoch: 0 });
        if (e.type === 'saveState') queue.push({ type: 'stateSaved', ok: true });
        if (e.type === 'callPromote') queue.push({ type: 'promoteSettled', term: e.term, ok: true });
      }
    }
    expect(d.state.role).toBe('primary');
    return d;
  }
  const heartbeatsOf = (effects: readonly Effect[]) =>
    effects.filter((e): e is Extract<Effect, { type: 'publish' }> => e.type === 'publish' && e.topic === 'instance.heartbeat');

  it('is logged and reported once; the primary keeps its role', () => {
    const d = primary();
    d.advanceTo(50);
    const fx = d.send({ type: 'endpointStolen', found: 'replaced', detail: 'another socket (inode 7)' });
    expect(notes(fx)).toEqual([{ type: 'endpointStolen', found: 'replaced', detail: 'another socket (inode 7)' }]);
    expect(fx.filter((e) => e.type === 'log' && e.level === 'error')).toHaveLength(1);
    expect(fx.some((e) => e.type === 'release')).toBe(false);
    expect(d.state).toMatchObject({ role: 'primary', endpointStolen: { found: 'replaced', since: 50 } });
    // Said once: a second report changes nothing.
    expect(d.send({ type: 'endpointStolen', found: 'gone', detail: 'no file' })).toEqual([]);
  });

  it('rides on the welcome heartbeat too', () => {
    // A follower that connects after the theft (to the primary's old connection set) learns of
    // it from its welcome, not only from the next regular heartbeat.
    const d = primary();
    d.advanceTo(250);
    d.send({ type: 'endpointStolen', found: 'replaced', detail: 'another socket (inode 7)' });
    const welcome = heartbeatsOf(d.send({ type: 'subscribed' }));
    expect(welcome).toHaveLength(1);
    expect(welcome[0]?.endpointStolen).toBe('replaced');
  });

  it('rides on every heartbeat until the endpoint is given up', () => {
    const d = primary();
    expect(heartbeatsOf(d.advanceTo(250)).every((e) => e.endpointStolen === undefined)).toBe(true);
    d.send({ type: 'endpointStolen', found: 'gone', detail: 'no file at /x' });
    const beats = heartbeatsOf(d.advanceTo(600));
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(beats.every((e) => e.endpointStolen === 'gone')).toBe(true);
    const leaving = d.send({ type: 'stepDown' });
    for (const e of leaving) if (e.type === 'callDemote') d.send({ type: 'demoteSettled', term: e.term });
    expect(d.state).toMatchObject({ holdsEndpoint: false, endpointStolen: undefined });
  });

  it('is ignored by a node that holds no endpoint', () => {
    const d = new Driver({ initialRole: 'secondary' });
    d.send({ type: 'start' });
    expect(d.send({ type: 'endpointStolen', found: 'gone', detail: 'x' })).toEqual([]);
    expect(d.state.endpointStolen).toBeUndefined();
  });
});
