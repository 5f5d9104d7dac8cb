/**
 * Epochs at their edges, on a fake clock: the ceiling (2^53 - 1, the largest epoch every receiver
 * accepts), the epoch a node shows once it holds no term, and a primary followed although its
 * epoch is lower than one already seen.
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
/** 2^53 - 1: the largest integer every receiver accepts (docs/PROTOCOL.md 4.2). */
const MAX_EPOCH = Number.MAX_SAFE_INTEGER;

/** One machine on a fake time; `advanceTo` delivers a tick at every `wakeAt` on the way. */
class Driver {
  now = 0;
  state: MachineState;
  readonly effects: Effect[] = [];

  constructor(overrides: Partial<MachineConfig> = {}, knownEpoch = 0, enabled = true) {
    this.state = initialState({ ...TEST_MACHINE_CONFIG, ...overrides }, enabled, knownEpoch);
  }

  send(input: Input): Effect[] {
    const r = step(this.state, input, { now: this.now, random: () => 0.5 });
    this.state = r.state;
    this.effects.push(...r.effects);
    return [...r.effects];
  }

  advanceTo(t: number): Effect[] {
    const out: Effect[] = [];
    // Bounded: a machine that keeps asking for a wake-up at the same instant would spin its driver.
    for (let i = 0; i < 10_000; i++) {
      const at = this.state.wakeAt;
      if (at === undefined || at > t) break;
      if (at < this.now) throw new Error(`wakeAt ${at} lies in the past (now ${this.now})`);
      this.now = at;
      out.push(...this.send({ type: 'tick' }));
    }
    this.now = t;
    return out;
  }
}

function wire(topic: Topic, from: string, epoch: number): Input {
  return { type: 'message', wallNow: WALL, message: { version: 1, topic, instanceId: from, epoch, seq: 1, sentAt: WALL, pid: 4242, host: 'h' } };
}
const hb = (from: string, epoch: number): Input => wire('instance.heartbeat', from, epoch);
const farewell = (from: string, epoch: number): Input => wire('instance.shutdown', from, epoch);

const notes = (effects: readonly Effect[]): Notification[] => effects.flatMap((e) => (e.type === 'notify' ? [e.notification] : []));
const logs = (effects: readonly Effect[], level: string): string[] =>
  effects.flatMap((e) => (e.type === 'log' && e.level === level ? [e.message] : []));
const socketEffects = (effects: readonly Effect[]): Effect[] =>
  effects.filter((e) => e.type === 'bind' || e.type === 'publish' || e.type === 'saveState' || e.type === 'callPromote');

/** A started secondary that follows p at `epoch`. */
function following(epoch: number, knownEpoch = 0): Driver {
  const d = new Driver({ initialRole: 'secondary' }, knownEpoch);
  d.send({ type: 'start' });
  d.send(hb('p', epoch));
  return d;
}

/** Answers bind, epoch load (with `fileEpoch`), save and onPromote: an `auto` node made primary. */
function primaryAt(fileEpoch: number): Driver {
  const d = new Driver({ initialRole: 'auto' }, fileEpoch);
  d.send({ type: 'start' });
  d.send({ type: 'bindResult', outcome: 'bound' });
  d.send({ type: 'epochLoaded', fileEpoch });
  d.send({ type: 'stateSaved', ok: true });
  d.send({ type: 'promoteSettled', term: 1, ok: true });
  expect(d.state.role).toBe('primary');
  return d;
}

describe('heartbeat machine: the epoch ceiling', () => {
  it('takes 2^53 - 1 as the last valid epoch, with a warning', () => {
    const d = following(MAX_EPOCH - 1);
    const fx = [...d.send(farewell('p', MAX_EPOCH - 1)), ...d.send({ type: 'bindResult', outcome: 'bound' })];
    expect(fx.some((e) => e.type === 'loadEpoch')).toBe(true);
    const save = d.send({ type: 'epochLoaded', fileEpoch: MAX_EPOCH - 1 });
    expect(save.filter((e) => e.type === 'saveState')).toEqual([{ type: 'saveState', epoch: MAX_EPOCH, primary: true }]);
    expect(logs(save, 'warn').join()).toMatch(/last valid epoch/);
  });

  it('refuses a takeover past 2^53 - 1: no bind, an event', () => {
    // The story of the issue: after a node saw 2^53 - 1, its next promotion took 2^53, which
    // every receiver drops. Now it does not bind, reports once, and keeps watching.
    const d = following(MAX_EPOCH);
    const lost = [...d.send(farewell('p', MAX_EPOCH)), ...d.advanceTo(5000)];
    expect(socketEffects(lost)).toEqual([]);
    expect(notes(lost)).toEqual([
      { type: 'primaryLost', instanceId: 'p', epoch: MAX_EPOCH, cause: 'shutdown', willPromote: false, reason: 'epoch-exhausted' },
      { type: 'epochExhausted', epoch: MAX_EPOCH, reason: 'shutdown', detail: expect.stringMatching(/2\^53 - 1/) as string },
    ]);
    expect(logs(lost, 'error').join()).toMatch(/stop every node, delete the state file/);
    expect(d.state.counters.epochRefusals).toBe(1);
    expect(d.state).toMatchObject({ phase: 'secondary', role: 'secondary', holdsEndpoint: false, epoch: MAX_EPOCH });

    // Whoever holds the endpoint next (a node reset by hand) is followed; its loss is refused again.
    const back = d.send(hb('q', 1));
    expect(notes(back)).toMatchObject([{ type: 'primaryChanged', instanceId: 'q', epoch: 1 }]);
    const again = [...d.advanceTo(10_000)];
    expect(socketEffects(again)).toEqual([]);
    expect(notes(again).map((n) => n.type)).toEqual(['primaryLost', 'epochExhausted']);
    expect(d.state.counters.epochRefusals).toBe(2);
  });

  it('a disconnect at the ceiling probes nothing', () => {
    const d = following(MAX_EPOCH);
    const fx = [...d.send({ type: 'disconnected' }), ...d.advanceTo(200)];
    expect(socketEffects(fx)).toEqual([]);
    expect(d.state.probeUntil).toBeUndefined();
  });

  it('a claim whose state file holds 2^53 - 1 is given back unannounced', () => {
    // The wire said less; the file says the ceiling (another node took it meanwhile, or the file
    // was read as unsafe). Bound already: release without a farewell, never save or publish.
    const d = following(5);
    d.send(farewell('p', 5));
    d.send({ type: 'bindResult', outcome: 'bound' });
    const fx = d.send({ type: 'epochLoaded', fileEpoch: MAX_EPOCH });
    expect(fx.filter((e) => e.type !== 'log' && e.type !== 'notify')).toEqual([{ type: 'release', epoch: 5, farewellSeq: undefined }]);
    expect(notes(fx)).toMatchObject([{ type: 'epochExhausted', epoch: MAX_EPOCH, reason: 'shutdown' }]);
    expect(d.state).toMatchObject({ phase: 'secondary', holdsEndpoint: false, knownEpoch: MAX_EPOCH, epoch: MAX_EPOCH });
    // Not tried again.
    expect(socketEffects(d.advanceTo(10_000))).toEqual([]);
  });

  it('role primary at the ceiling fails to start without a bind', () => {
    const d = new Driver({ initialRole: 'primary' }, MAX_EPOCH);
    const fx = d.send({ type: 'start' });
    expect(fx.filter((e) => e.type === 'bind')).toEqual([]);
    expect(fx.filter((e) => e.type === 'startFailed')).toEqual([
      { type: 'startFailed', reason: 'epoch-exhausted', detail: expect.stringMatching(/no valid epoch left/) as string },
    ]);
    expect(d.state.phase).toBe('stopped');
  });

  it('role primary: a file at the ceiling found after the bind fails the start', () => {
    const d = new Driver({ initialRole: 'primary' }, 3);
    d.send({ type: 'start' });
    d.send({ type: 'bindResult', outcome: 'bound' });
    const fx = d.send({ type: 'epochLoaded', fileEpoch: MAX_EPOCH });
    expect(fx.filter((e) => e.type !== 'log' && e.type !== 'notify')).toEqual([
      { type: 'release', epoch: 3, farewellSeq: undefined },
      { type: 'startFailed', reason: 'epoch-exhausted', detail: expect.any(String) as string },
      { type: 'close' },
    ]);
  });

  it('role auto at the ceiling starts as a secondary without a bind', () => {
    const d = new Driver({ initialRole: 'auto' }, MAX_EPOCH);
    const fx = d.send({ type: 'start' });
    expect(fx.filter((e) => e.type === 'bind')).toEqual([]);
    expect(fx.map((e) => e.type)).toContain('started');
    expect(notes(fx).map((n) => n.type)).toEqual(['epochExhausted', 'roleChanged']);
    expect(d.state.role).toBe('secondary');
  });

  it('setEnabled(true) at the ceiling does not bind', () => {
    const d = following(MAX_EPOCH);
    d.send({ type: 'setEnabled', enabled: false });
    const lost = [...d.send(farewell('p', MAX_EPOCH)), ...d.advanceTo(500)];
    expect(notes(lost)).toMatchObject([{ type: 'primaryLost', willPromote: false }]);
    const fx = [...d.send({ type: 'setEnabled', enabled: true }), ...d.advanceTo(5000)];
    expect(socketEffects(fx)).toEqual([]);
    expect(notes(fx).map((n) => n.type)).toEqual(['epochExhausted']);
  });
});

describe('heartbeat machine: the epoch a node shows', () => {
  it('shows the higher epoch after stepping down for it', () => {
    // Issue 16: status().epoch is "own epoch while primary, otherwise the highest epoch known";
    // after stepping down for epoch 100 it showed 1.
    const d = primaryAt(0);
    expect(d.state.epoch).toBe(1);
    d.now = 50;
    const fx = d.send(hb('x', 100));
    expect(notes(fx)).toContainEqual({ type: 'roleChanged', from: 'primary', to: 'secondary', epoch: 1, reason: 'higher-epoch' });
    expect(fx.filter((e) => e.type === 'callDemote')).toEqual([{ type: 'callDemote', term: 1, epoch: 1, reason: 'higher-epoch' }]);
    expect(d.state).toMatchObject({ role: 'secondary', epoch: 100, knownEpoch: 100 });
  });

  it('onDemote of a term lost during onPromote keeps its epoch', () => {
    const d = following(3);
    d.send(farewell('p', 3));
    d.send({ type: 'bindResult', outcome: 'bound' });
    d.send({ type: 'epochLoaded', fileEpoch: 3 });
    d.send({ type: 'stateSaved', ok: true });
    d.send(hb('x', 100));
    expect(d.state.epoch).toBe(100);
    const settled = d.send({ type: 'promoteSettled', term: 1, ok: true });
    expect(settled.filter((e) => e.type === 'callDemote')).toEqual([{ type: 'callDemote', term: 1, epoch: 4, reason: 'higher-epoch' }]);
  });

  it('shows the state file epoch after a stalled primary stepped down', () => {
    const d = primaryAt(3);
    d.now = 100;
    d.send({ type: 'tick' });
    d.now = 1000;
    d.send({ type: 'tick' });
    expect(d.state.phase).toBe('verifying');
    d.send({ type: 'epochLoaded', fileEpoch: 9 });
    expect(d.state).toMatchObject({ role: 'secondary', epoch: 9 });
  });
});

describe('heartbeat machine: a primary with a lower epoch', () => {
  it('warns with both epochs and counts the follow', () => {
    // Issue 16: following a primary whose epoch is lower than one already seen was an ordinary
    // "following" line when no primary was followed at that moment (after a shutdown).
    const d = following(7);
    d.send(farewell('p', 7));
    const fx = d.send(hb('q', 2));
    expect(d.state.primary).toMatchObject({ instanceId: 'q', epoch: 2 });
    expect(logs(fx, 'warn')).toEqual([expect.stringMatching(/following q with epoch 2, lower than epoch 7 already seen/)]);
    expect(d.state.counters.staleEpochFollows).toBe(1);
    // Its next heartbeats are the same primary: counted once.
    d.send(hb('q', 2));
    expect(d.state.counters.staleEpochFollows).toBe(1);
  });

  it('counts a lower epoch than the state file at start', () => {
    const d = new Driver({ initialRole: 'secondary' }, 12);
    d.send({ type: 'start' });
    const fx = d.send(hb('q', 3));
    expect(logs(fx, 'warn').join()).toMatch(/epoch 3, lower than epoch 12/);
    expect(d.state.counters.staleEpochFollows).toBe(1);
  });

  it('does not count a primary at or above the known epoch', () => {
    const d = following(7);
    d.send(hb('q', 9));
    d.send(hb('r', 9));
    expect(d.state.counters.staleEpochFollows).toBe(0);
    expect(logs(d.effects, 'warn')).toEqual([]);
  });
});
