/**
 * The lease machine on a simulated clock: scripted inputs, every effect checked. A ten-second
 * scenario takes a millisecond; nothing here touches Redis, timers or Date.now.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  initialLeaseState,
  leaseStep,
  type LeaseEffect,
  type LeaseInput,
  type LeaseMachineConfig,
  type LeaseMachineState,
  type OpReply,
} from '../../../src/core/lease-machine.js';

const CONFIG: LeaseMachineConfig = {
  nodeId: 'me',
  priority: 2,
  strategy: 'race',
  tickInterval: 100,
  leaseTTL: 1000,
  maxDrift: 500,
  stopTimeout: 1000,
  handoverTimeout: 1000,
  failureHoldOff: 1000,
};

/** The machine plus a clock that only moves when told, firing ticks at the machine's wakeAt. */
class Sim {
  state: LeaseMachineState;
  now = 0;
  random = 0.5;
  readonly log: LeaseEffect[] = [];

  constructor(config: Partial<LeaseMachineConfig> = {}) {
    this.state = initialLeaseState({ ...CONFIG, ...config });
  }

  feed(input: LeaseInput): LeaseEffect[] {
    const r = leaseStep(this.state, input, { now: this.now, random: () => this.random });
    this.state = r.state;
    this.log.push(...r.effects);
    return [...r.effects];
  }

  /** Moves time to `to`, delivering a tick at every wakeAt on the way. */
  advanceTo(to: number): LeaseEffect[] {
    const out: LeaseEffect[] = [];
    for (let at = this.state.wakeAt; at !== undefined && at <= to; at = this.state.wakeAt) {
      this.now = Math.max(this.now, at);
      out.push(...this.feed({ type: 'tick' }));
    }
    this.now = to;
    return out;
  }

  get op() {
    return this.state.op;
  }

  reply(reply: OpReply): LeaseEffect[] {
    const op = this.state.op;
    if (op === undefined) throw new Error('no op in flight');
    return this.feed({ type: 'opResult', id: op.id, reply });
  }

  fail(detail = 'ECONNREFUSED'): LeaseEffect[] {
    const op = this.state.op;
    if (op === undefined) throw new Error('no op in flight');
    return this.feed({ type: 'opFailed', id: op.id, detail });
  }

  /** Starts, connects, and wins the lease at revision `revision`. */
  lead(revision = 1): void {
    this.feed({ type: 'start' });
    this.feed({ type: 'connected' });
    this.reply(acquired(revision));
  }
}

const acquired = (revision: number, from: 'vacant' | 'released' | 'expired' | 'self' = 'vacant'): OpReply => ({
  kind: 'acquire',
  outcome: 'acquired',
  revision,
  from,
  duplicate: false,
});
const taken = (nodeId: string, revision: number): OpReply => ({
  kind: 'acquire',
  outcome: 'taken',
  leader: { nodeId, revision, priority: 1 },
  duplicate: false,
});
const refreshed = (betterNode?: string): OpReply => ({ kind: 'refresh', outcome: 'refreshed', betterNode, duplicate: false });
const lost: OpReply = { kind: 'refresh', outcome: 'lost', leader: { nodeId: 'other', revision: 9, priority: 1 }, duplicate: false };

const ofType = <T extends LeaseEffect['type']>(effects: readonly LeaseEffect[], type: T) =>
  effects.filter((e): e is Extract<LeaseEffect, { type: T }> => e.type === type);
const roleChanges = (effects: readonly LeaseEffect[]) =>
  ofType(effects, 'notify').map((e) => `${e.notification.from}->${e.notification.to}:${e.notification.reason}@${e.notification.epoch}`);

describe('starting', () => {
  it('sends nothing until connected, then acquires at once', () => {
    const sim = new Sim();
    expect(sim.feed({ type: 'start' })).toEqual([]);
    const effects = sim.feed({ type: 'connected' });
    expect(ofType(effects, 'op')).toEqual([{ type: 'op', id: 1, kind: 'acquire', eligible: true, knownRevision: 0 }]);
  });

  it('becomes primary with the revision the store granted, calls onStart and settles', () => {
    const sim = new Sim();
    sim.feed({ type: 'start' });
    sim.feed({ type: 'connected' });
    const effects = sim.reply(acquired(4, 'expired'));
    expect(roleChanges(effects)).toEqual(['starting->primary:expired@4']);
    expect(ofType(effects, 'callStart')).toEqual([{ type: 'callStart', term: 1, revision: 4, reason: 'expired' }]);
    expect(ofType(effects, 'started')).toHaveLength(1);
    expect(sim.state).toMatchObject({ role: 'primary', phase: 'leader', revision: 4 });
  });

  it('becomes secondary when the lease is taken, and remembers the leader and its revision', () => {
    const sim = new Sim();
    sim.feed({ type: 'start' });
    sim.feed({ type: 'connected' });
    const effects = sim.reply(taken('boss', 7));
    expect(roleChanges(effects)).toEqual(['starting->secondary:startup@7']);
    expect(sim.state.leader?.nodeId).toBe('boss');
    sim.advanceTo(200);
    expect(ofType(sim.log, 'op').at(-1)).toMatchObject({ kind: 'acquire', knownRevision: 7 });
  });

  it('keeps trying while Redis fails, and does not settle before an answer', () => {
    const sim = new Sim();
    sim.feed({ type: 'start' });
    sim.feed({ type: 'connected' });
    const effects = sim.fail();
    expect(ofType(effects, 'log')[0]?.level).toBe('warn');
    sim.advanceTo(130);
    sim.fail();
    expect(ofType(sim.log, 'started')).toHaveLength(0);
    expect(sim.state.counters.operationFailures).toBe(2);
    sim.advanceTo(260);
    const ok = sim.reply(taken('x', 1));
    expect(ofType(ok, 'log').map((l) => l.message)).toContain('Redis answers again');
    expect(ofType(ok, 'started')).toHaveLength(1);
  });
});

describe('a grant that answers too late', () => {
  it('is given back instead of acted upon when maxDrift passed since the acquire was sent', () => {
    const sim = new Sim();
    sim.feed({ type: 'start' });
    sim.feed({ type: 'connected' }); // acquire sent at 0
    sim.advanceTo(500);
    const effects = sim.reply(acquired(2));
    expect(ofType(effects, 'callStart')).toEqual([]);
    expect(ofType(effects, 'release')).toEqual([{ type: 'release', reason: 'drift', deregister: false, awaited: false, revision: 2 }]);
    expect(sim.state.role).toBe('secondary');
    expect(sim.state.knownRevision).toBe(2);
  });
});

describe('ticks', () => {
  it('are jittered within ±20% of tickInterval', () => {
    for (const [random, expected] of [
      [0, 80],
      [0.5, 100],
      [0.999999, 120],
    ] as const) {
      const sim = new Sim();
      sim.random = random;
      sim.feed({ type: 'start' });
      expect(sim.state.nextTickAt).toBeCloseTo(expected, 3);
    }
  });

  it('skip an operation while the previous one has not answered (one in flight at a time)', () => {
    const sim = new Sim();
    sim.lead();
    sim.advanceTo(100);
    expect(sim.op?.kind).toBe('refresh');
    const id = sim.op?.id;
    sim.advanceTo(200);
    expect(sim.op?.id).toBe(id);
    expect(sim.state.counters.skippedTicks).toBe(1);
  });

  it('ignore a reply that is not for the operation in flight', () => {
    const sim = new Sim();
    sim.lead();
    sim.advanceTo(100);
    const before = sim.state;
    sim.feed({ type: 'opResult', id: 999, reply: lost });
    expect(sim.state).toEqual(before);
  });
});

describe('a leader', () => {
  it('refreshes every tick and stays primary while refreshes succeed', () => {
    const sim = new Sim();
    sim.lead();
    for (let t = 100; t <= 3000; t += 100) {
      sim.advanceTo(t);
      if (sim.op !== undefined) sim.reply(refreshed());
    }
    expect(sim.state.role).toBe('primary');
    expect(sim.state.counters.operations).toBeGreaterThan(25);
  });

  it('steps down exactly maxDrift after the send time of its last successful refresh', () => {
    const sim = new Sim();
    sim.lead(); // acquire sent at 0
    sim.advanceTo(100); // refresh sent at 100...
    sim.advanceTo(450);
    sim.reply(refreshed()); // ...answered late at 450: the lease counts from 100
    expect(sim.state.leaseOkSentAt).toBe(100);
    expect(sim.state.wakeAt).toBeLessThanOrEqual(600);
    sim.advanceTo(599);
    if (sim.op !== undefined) sim.fail();
    expect(sim.state.role).toBe('primary');
    const effects = sim.advanceTo(600);
    expect(roleChanges(effects)).toEqual(['primary->secondary:drift@1']);
    expect(ofType(effects, 'abortStart')).toEqual([{ type: 'abortStart', term: 1, reason: 'drift' }]);
    // Best effort: hand the lease back in case Redis is merely slow.
    expect(ofType(effects, 'release')).toEqual([{ type: 'release', reason: 'drift', deregister: false, awaited: false, revision: 1 }]);
    expect(sim.state.counters.driftStepDowns).toBe(1);
  });

  it('ends the term before it gives the lease back', () => {
    // The release lets a standby lead within a round trip: the signal must abort and the role
    // change before it is sent, or two terms overlap by however long the effects take to run.
    const sim = new Sim();
    sim.lead();
    sim.advanceTo(100);
    const effects = sim.advanceTo(600).map((e) => (e.type === 'notify' ? `notify:${e.notification.type}` : e.type));
    const release = effects.indexOf('release');
    expect(release).toBeGreaterThan(effects.indexOf('abortStart'));
    expect(release).toBeGreaterThan(effects.indexOf('notify:roleChanged'));
    expect(effects.indexOf('abortStart')).toBeGreaterThanOrEqual(0);
  });

  it('steps down at once when a refresh finds the lease held by another node', () => {
    const sim = new Sim();
    sim.lead();
    sim.advanceTo(100);
    const effects = sim.reply(lost);
    expect(roleChanges(effects)).toEqual(['primary->secondary:lease-lost@1']);
    expect(ofType(effects, 'release')).toEqual([]);
    expect(sim.state.knownRevision).toBe(9);
  });

  it('steps down on a late stalled wake-up even if the reply then says refreshed', () => {
    const sim = new Sim();
    sim.lead();
    sim.advanceTo(100); // refresh sent at 100
    sim.now = 2000; // the process stalled; the first thing it sees is the old reply
    const effects = sim.reply(refreshed());
    expect(roleChanges(effects)).toEqual(['primary->secondary:drift@1']);
  });
});

describe('onStart and onStop', () => {
  it('onStop waits for onStart to settle, and the node does not run for leader before both settled', () => {
    const sim = new Sim();
    sim.lead();
    sim.advanceTo(100);
    sim.reply(lost);
    expect(ofType(sim.log, 'callStop')).toHaveLength(0);
    sim.advanceTo(200);
    expect(sim.op).toMatchObject({ kind: 'observe' });
    expect(ofType(sim.log, 'op').at(-1)?.eligible).toBe(false);
    sim.reply({ kind: 'observe', leader: undefined, duplicate: false });
    const settled = sim.feed({ type: 'startSettled', term: 1, ok: true });
    expect(ofType(settled, 'callStop')).toEqual([{ type: 'callStop', term: 1, revision: 1, reason: 'lease-lost' }]);
    sim.feed({ type: 'stopSettled', term: 1 });
    sim.advanceTo(300);
    expect(sim.op?.kind).toBe('acquire');
  });

  it('abandons onStop after stopTimeout with a warning and runs for leader again', () => {
    const sim = new Sim();
    sim.lead();
    sim.feed({ type: 'startSettled', term: 1, ok: true }); // onStart returned early: still leader
    expect(sim.state.role).toBe('primary');
    sim.advanceTo(100);
    sim.reply(lost);
    expect(ofType(sim.log, 'callStop')).toHaveLength(1);
    for (let t = 200; t < 1100; t += 100) {
      sim.advanceTo(t);
      if (sim.op !== undefined) sim.reply({ kind: 'observe', leader: undefined, duplicate: false });
    }
    const effects = sim.advanceTo(1100);
    expect(ofType(effects, 'log').some((l) => l.level === 'warn' && l.message.includes('onStop did not finish within 1000 ms'))).toBe(true);
    expect(sim.state.counters.abandonedStops).toBe(1);
    sim.advanceTo(1250);
    expect(sim.op?.kind).toBe('acquire');
    // A late answer of the abandoned onStop changes nothing.
    const before = sim.state;
    sim.feed({ type: 'stopSettled', term: 1 });
    expect(sim.state.stopOutstanding).toBe(before.stopOutstanding);
  });

  it('a rejected onStart hands back at once, without onStop, and holds off', () => {
    const sim = new Sim();
    sim.lead();
    sim.now = 30;
    const stopped = sim.feed({ type: 'startSettled', term: 1, ok: false, detail: 'boom' });
    // The node never took the role (the contract's onPromote): no onStop for this term.
    expect(ofType(stopped, 'callStop')).toHaveLength(0);
    expect(roleChanges(stopped)).toEqual(['primary->secondary:start-failed@1']);
    expect(ofType(stopped, 'release')).toEqual([{ type: 'release', reason: 'start-failed', deregister: false, awaited: false, revision: 1 }]);
    sim.advanceTo(1000);
    expect(ofType(sim.log, 'op').filter((o) => o.kind === 'acquire')).toHaveLength(1); // only the first
    expect(ofType(sim.log, 'op').at(-1)).toMatchObject({ kind: 'observe', eligible: false });
    if (sim.op !== undefined) sim.reply({ kind: 'observe', leader: undefined, duplicate: false });
    sim.advanceTo(1150);
    expect(sim.op?.kind).toBe('acquire');
  });
});

describe('a drift during a failed start', () => {
  it('a rejected onStart while Redis fails still holds off for failureHoldOff', () => {
    const sim = new Sim();
    sim.lead(); // acquire sent at 0
    sim.now = 30;
    sim.feed({ type: 'startSettled', term: 1, ok: false, detail: 'boom' });
    // No onStop to wait for: the exit is over at once, the lease handed back.
    expect(sim.state.exit).toBeUndefined();
    expect(sim.state.role).toBe('secondary');
    for (let t = 100; t <= 600; t += 100) {
      sim.advanceTo(t);
      if (sim.op !== undefined) sim.fail();
    }
    expect(sim.state.holdOffUntil).toBe(30 + 1000);
    for (let t = 700; t <= 1000; t += 100) {
      sim.advanceTo(t);
      if (sim.op !== undefined) sim.reply({ kind: 'observe', leader: undefined, duplicate: false });
    }
    expect(ofType(sim.log, 'op').filter((o) => o.kind === 'acquire')).toHaveLength(1); // only the first
  });
});

describe('voluntary exits', () => {
  it('close as leader: abort, onStart settles, onStop, then stopped + release with deregistration, then close', () => {
    const sim = new Sim();
    sim.lead();
    const shut = sim.feed({ type: 'shutdown' });
    expect(ofType(shut, 'abortStart')).toEqual([{ type: 'abortStart', term: 1, reason: 'shutdown' }]);
    expect(sim.state.role).toBe('primary');
    sim.feed({ type: 'startSettled', term: 1, ok: true });
    const stopped = sim.feed({ type: 'stopSettled', term: 1 });
    expect(roleChanges(stopped)).toEqual(['primary->stopped:shutdown@1']);
    expect(ofType(stopped, 'release')).toEqual([{ type: 'release', reason: 'shutdown', deregister: true, awaited: true, mayHold: true }]);
    expect(ofType(sim.feed({ type: 'releaseResult', released: true, ok: true }), 'close')).toHaveLength(1);
    sim.feed({ type: 'closed' });
    expect(sim.state).toMatchObject({ phase: 'stopped', role: 'stopped', wakeAt: undefined });
  });

  it('keeps refreshing while onStop runs, and releases anyway after handoverTimeout when onStart ignores its signal', () => {
    const sim = new Sim();
    sim.lead();
    sim.feed({ type: 'shutdown' });
    sim.advanceTo(100);
    expect(sim.op?.kind).toBe('refresh');
    sim.reply(refreshed());
    for (let t = 200; t < 1000; t += 100) {
      sim.advanceTo(t);
      if (sim.op !== undefined) sim.reply(refreshed());
    }
    expect(sim.state.role).toBe('primary');
    const effects = sim.advanceTo(1000);
    expect(ofType(effects, 'release')).toHaveLength(1);
    expect(roleChanges(effects)).toEqual(['primary->stopped:shutdown@1']);
    expect(ofType(effects, 'log').some((l) => l.message.includes('onStart did not return'))).toBe(true);
  });

  it('close as follower releases (an acquire in flight may have won) and deregisters', () => {
    const sim = new Sim();
    sim.feed({ type: 'start' });
    sim.feed({ type: 'connected' });
    const shut = sim.feed({ type: 'shutdown' });
    expect(roleChanges(shut)).toEqual(['starting->stopped:shutdown@0']);
    expect(ofType(shut, 'release')).toEqual([{ type: 'release', reason: 'shutdown', deregister: true, awaited: true, mayHold: true }]);
    // The acquire wins after all: give it back, do not lead.
    const late = sim.reply(acquired(3));
    expect(ofType(late, 'callStart')).toEqual([]);
    expect(ofType(late, 'release')).toHaveLength(1);
  });

  it('priority: a better live node makes the leader hand over after onStop; race ignores it', () => {
    const sim = new Sim({ strategy: 'priority' });
    sim.lead();
    sim.feed({ type: 'startSettled', term: 1, ok: true });
    sim.advanceTo(100);
    const preempted = sim.reply(refreshed('better'));
    expect(ofType(preempted, 'callStop')).toHaveLength(1);
    const done = sim.feed({ type: 'stopSettled', term: 1 });
    expect(roleChanges(done)).toEqual(['primary->secondary:preempted@1']);
    expect(ofType(done, 'release')[0]?.reason).toBe('preempted');

    const race = new Sim({ strategy: 'race' });
    race.lead();
    race.advanceTo(100);
    race.reply(refreshed('better'));
    expect(race.state.role).toBe('primary');
  });
});

describe('setEnabled', () => {
  it('a disabled leader hands over (disabled); it then only observes', () => {
    const sim = new Sim();
    sim.lead();
    sim.feed({ type: 'startSettled', term: 1, ok: true });
    const off = sim.feed({ type: 'setEnabled', enabled: false });
    expect(ofType(off, 'callStop')).toEqual([{ type: 'callStop', term: 1, revision: 1, reason: 'disabled' }]);
    const done = sim.feed({ type: 'stopSettled', term: 1 });
    expect(roleChanges(done)).toEqual(['primary->secondary:disabled@1']);
    expect(ofType(done, 'release')).toEqual([{ type: 'release', reason: 'disabled', deregister: false, awaited: false, revision: 1 }]);
    for (let t = 100; t <= 3000; t += 100) {
      sim.advanceTo(t);
      if (sim.op !== undefined) sim.reply({ kind: 'observe', leader: undefined, duplicate: false });
    }
    expect(ofType(sim.log, 'op').filter((o) => o.kind === 'acquire')).toHaveLength(1); // only the first
    sim.feed({ type: 'setEnabled', enabled: true });
    const kind = (): string | undefined => (sim.op as { kind: string } | undefined)?.kind;
    for (let t = 3100; t <= 3500 && kind() !== 'acquire'; t += 100) {
      sim.advanceTo(t);
      if (sim.op !== undefined && kind() !== 'acquire') sim.reply({ kind: 'observe', leader: undefined, duplicate: false });
    }
    expect((sim.op as { kind: string } | undefined)?.kind).toBe('acquire');
  });
});

describe('stepDown', () => {
  const observed: OpReply = { kind: 'observe', leader: { nodeId: 'other', revision: 2, priority: 1 }, duplicate: false };

  it('aborts onStart, runs onStop after it settled, then releases (published) and becomes secondary; holds off for failureHoldOff, then runs again and can lead', () => {
    const sim = new Sim();
    sim.lead();
    sim.now = 20;
    const asked = sim.feed({ type: 'stepDown' });
    expect(ofType(asked, 'abortStart')).toEqual([{ type: 'abortStart', term: 1, reason: 'stepdown' }]);
    expect(ofType(asked, 'callStop')).toEqual([]); // onStart has not returned yet
    expect(ofType(asked, 'release')).toEqual([]);
    expect(sim.state.role).toBe('primary'); // the lease is ours until onStop finished
    const settled = sim.feed({ type: 'startSettled', term: 1, ok: true });
    expect(ofType(settled, 'callStop')).toEqual([{ type: 'callStop', term: 1, revision: 1, reason: 'stepdown' }]);
    expect(sim.state.role).toBe('primary');
    sim.now = 30;
    const stopped = sim.feed({ type: 'stopSettled', term: 1 });
    expect(roleChanges(stopped)).toEqual(['primary->secondary:stepdown@1']);
    expect(ofType(stopped, 'release')).toEqual([{ type: 'release', reason: 'stepdown', deregister: false, awaited: false, revision: 1 }]);
    expect(sim.state).toMatchObject({ phase: 'follower', holdOffUntil: 30 + CONFIG.failureHoldOff, exit: undefined });
    expect(sim.state.counters.stepDowns).toBe(1);

    // Out of the election for failureHoldOff: observes as ineligible, ignores release notices.
    const notice = sim.feed({ type: 'notice', notice: { type: 'released', nodeId: 'other', revision: 2, priority: 1 } });
    expect(ofType(notice, 'op')).toEqual([]);
    const opsBefore = ofType(sim.log, 'op').length;
    for (let t = 100; t < 30 + CONFIG.failureHoldOff; t += 100) {
      sim.advanceTo(t);
      if (sim.op !== undefined) sim.reply(observed);
    }
    const during = ofType(sim.log, 'op').slice(opsBefore);
    expect(during.length).toBeGreaterThan(5);
    expect(during.every((o) => o.kind === 'observe' && !o.eligible)).toBe(true);
    expect(sim.state.role).toBe('secondary');

    // Afterwards it runs for leader again and can win a new term.
    sim.advanceTo(30 + CONFIG.failureHoldOff + 100);
    expect(sim.op).toMatchObject({ kind: 'acquire' });
    expect(ofType(sim.log, 'op').at(-1)?.eligible).toBe(true);
    const again = sim.reply(acquired(3, 'released'));
    expect(roleChanges(again)).toEqual(['secondary->primary:handover@3']);
    expect(ofType(again, 'callStart')).toEqual([{ type: 'callStart', term: 2, revision: 3, reason: 'handover' }]);
  });

  it('when onStart already returned: onStop at once, no abort; the release follows onStop', () => {
    const sim = new Sim();
    sim.lead();
    sim.feed({ type: 'startSettled', term: 1, ok: true });
    const asked = sim.feed({ type: 'stepDown' });
    expect(ofType(asked, 'abortStart')).toEqual([]);
    expect(ofType(asked, 'callStop')).toEqual([{ type: 'callStop', term: 1, revision: 1, reason: 'stepdown' }]);
    expect(ofType(asked, 'release')).toEqual([]);
    expect(ofType(sim.feed({ type: 'stopSettled', term: 1 }), 'release')).toMatchObject([{ reason: 'stepdown' }]);
  });

  it('keeps refreshing while onStop runs, and hands over after handoverTimeout when onStop hangs', () => {
    const sim = new Sim();
    sim.lead();
    sim.feed({ type: 'startSettled', term: 1, ok: true });
    sim.feed({ type: 'stepDown' });
    for (let t = 100; t < 1000; t += 100) {
      sim.advanceTo(t);
      expect(sim.op?.kind).toBe('refresh');
      sim.reply(refreshed());
    }
    expect(sim.state.role).toBe('primary');
    const effects = sim.advanceTo(1000);
    expect(roleChanges(effects)).toEqual(['primary->secondary:stepdown@1']);
    expect(ofType(effects, 'release')).toMatchObject([{ reason: 'stepdown' }]);
    expect(sim.state.counters.abandonedStops).toBe(1);
    expect(sim.state.holdOffUntil).toBe(1000 + CONFIG.failureHoldOff);
  });

  it('has no effect unless leader: idle, follower, or already handing over', () => {
    const idle = new Sim();
    expect(idle.feed({ type: 'stepDown' }).filter((e) => e.type !== 'log')).toEqual([]);
    expect(idle.state.phase).toBe('idle');

    const follower = new Sim();
    follower.feed({ type: 'start' });
    follower.feed({ type: 'connected' });
    follower.reply(taken('boss', 1));
    const before = follower.state;
    expect(follower.feed({ type: 'stepDown' }).filter((e) => e.type !== 'log')).toEqual([]);
    expect({ ...follower.state, wakeAt: before.wakeAt }).toEqual(before);
    expect(follower.state.holdOffUntil).toBeUndefined();

    const failing = new Sim();
    failing.lead();
    failing.feed({ type: 'startSettled', term: 1, ok: false, detail: 'boom' });
    expect(failing.state.role).toBe('secondary');
    expect(failing.feed({ type: 'stepDown' }).filter((e) => e.type !== 'log')).toEqual([]);
    expect(failing.state.exit).toBeUndefined();
  });

  it('a close during a step-down finishes as a close: stopped, released with deregistration', () => {
    const sim = new Sim();
    sim.lead();
    sim.feed({ type: 'stepDown' });
    sim.feed({ type: 'shutdown' });
    sim.feed({ type: 'startSettled', term: 1, ok: true });
    const done = sim.feed({ type: 'stopSettled', term: 1 });
    expect(roleChanges(done)).toEqual(['primary->stopped:shutdown@1']);
    expect(ofType(done, 'release')).toEqual([{ type: 'release', reason: 'shutdown', deregister: true, awaited: true, mayHold: true }]);
    expect(ofType(sim.log, 'callStop')).toHaveLength(1);
  });

  it('losing the lease during a step-down ends the term as lost, once, and without a hold-off', () => {
    const sim = new Sim();
    sim.lead();
    sim.feed({ type: 'startSettled', term: 1, ok: true });
    sim.feed({ type: 'stepDown' });
    sim.advanceTo(100);
    const lostNow = sim.reply(lost);
    expect(roleChanges(lostNow)).toEqual(['primary->secondary:lease-lost@1']);
    sim.feed({ type: 'stopSettled', term: 1 });
    expect(ofType(sim.log, 'callStop')).toHaveLength(1);
    expect(sim.state).toMatchObject({ exit: undefined, holdOffUntil: undefined });
  });
});

describe('notices', () => {
  it('a release by another node makes an eligible follower acquire at once, or right after the operation in flight', () => {
    const sim = new Sim();
    sim.feed({ type: 'start' });
    sim.feed({ type: 'connected' });
    sim.reply(taken('boss', 1));
    sim.now = 40;
    const now = sim.feed({ type: 'notice', notice: { type: 'released', nodeId: 'boss', revision: 1, priority: 1 } });
    expect(ofType(now, 'op')).toMatchObject([{ kind: 'acquire' }]);
    const again = sim.feed({ type: 'notice', notice: { type: 'released', nodeId: 'boss', revision: 1, priority: 1 } });
    expect(ofType(again, 'op')).toEqual([]);
    const after = sim.reply(taken('other', 2));
    expect(ofType(after, 'op')).toMatchObject([{ kind: 'acquire', knownRevision: 2 }]);
  });

  it('a preempt notice makes a priority leader refresh at once', () => {
    const sim = new Sim({ strategy: 'priority' });
    sim.lead();
    sim.now = 10;
    const effects = sim.feed({ type: 'notice', notice: { type: 'preempt', nodeId: 'better', revision: 1, priority: 1 } });
    expect(ofType(effects, 'op')).toMatchObject([{ kind: 'refresh' }]);
  });
});

describe('invariants under random interleavings', () => {
  const inputArb: fc.Arbitrary<(sim: Sim) => void> = fc.oneof(
    fc.integer({ min: 1, max: 700 }).map((ms) => (sim: Sim) => void sim.advanceTo(sim.now + ms)),
    fc.constant((sim: Sim) => void (sim.op && sim.reply(sim.op.kind === 'acquire' ? acquired(sim.state.knownRevision + 1) : sim.op.kind === 'refresh' ? refreshed() : { kind: 'observe', leader: undefined, duplicate: false }))),
    fc.constant((sim: Sim) => void (sim.op?.kind === 'refresh' && sim.reply(lost))),
    fc.constant((sim: Sim) => void (sim.op?.kind === 'acquire' && sim.reply(taken('x', sim.state.knownRevision)))),
    fc.constant((sim: Sim) => void (sim.op && sim.fail())),
    fc.boolean().map((ok) => (sim: Sim) => void (sim.state.startOutstanding !== undefined && sim.feed({ type: 'startSettled', term: sim.state.startOutstanding, ok }))),
    fc.constant((sim: Sim) => void (sim.state.stopOutstanding && sim.feed({ type: 'stopSettled', term: sim.state.stopOutstanding.term }))),
    fc.constant((sim: Sim) => void sim.feed({ type: 'notice', notice: { type: 'released', nodeId: 'x', revision: 1, priority: 1 } })),
    fc.constant((sim: Sim) => void sim.feed({ type: 'connected' })),
    fc.constant((sim: Sim) => void sim.feed({ type: 'stepDown' })),
  );

  it('onStop follows its onStart, terms never overlap, a primary always holds a fresh lease, revisions grow', () => {
    fc.assert(
      fc.property(fc.array(inputArb, { minLength: 1, maxLength: 80 }), fc.boolean(), (steps, close) => {
        const sim = new Sim();
        sim.feed({ type: 'start' });
        sim.feed({ type: 'connected' });
        for (const s of steps) {
          s(sim);
          const st = sim.state;
          if (st.role === 'primary') {
            expect(st.phase).toBe('leader');
            expect(sim.now - (st.leaseOkSentAt ?? -Infinity)).toBeLessThan(CONFIG.maxDrift);
          }
        }
        if (close) sim.feed({ type: 'shutdown' });
        // Walk the effect log: onStart/onStop pairing and revisions of successive terms.
        let open: { term: number; revision: number } | undefined;
        let lastRevision = 0;
        for (const e of sim.log) {
          if (e.type === 'callStart') {
            expect(open).toBeUndefined();
            expect(e.revision).toBeGreaterThan(lastRevision);
            lastRevision = e.revision;
            open = { term: e.term, revision: e.revision };
          }
          if (e.type === 'callStop') {
            expect(e).toMatchObject(open ?? {});
            open = undefined;
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('a slow but successful answer', () => {
  it('makes a new leader refresh at once when half of maxDrift is already used', () => {
    const sim = new Sim();
    sim.feed({ type: 'start' });
    sim.feed({ type: 'connected' }); // acquire sent at 0
    sim.now = 300;
    const effects = sim.reply(acquired(1));
    expect(sim.state.role).toBe('primary');
    expect(ofType(effects, 'op')).toMatchObject([{ kind: 'refresh' }]);
    sim.now = 310;
    sim.reply(refreshed());
    expect(sim.state.leaseOkSentAt).toBe(300);
  });

  it('does not refresh early after a quick answer', () => {
    const sim = new Sim();
    sim.feed({ type: 'start' });
    sim.feed({ type: 'connected' });
    sim.now = 5;
    expect(ofType(sim.reply(acquired(1)), 'op')).toEqual([]);
  });
});

const vacant: OpReply = { kind: 'acquire', outcome: 'taken', leader: undefined, duplicate: false };
const changes = (effects: readonly LeaseEffect[]) => ofType(effects, 'primaryChanged').map((e) => `${e.nodeId}@${e.revision}`);
/** The machine, started and connected, with an acquire in flight. */
function follower(): Sim {
  const sim = new Sim();
  sim.feed({ type: 'start' });
  sim.feed({ type: 'connected' });
  return sim;
}
/** Runs the next tick (the next lease operation). */
const tick = (sim: Sim): LeaseEffect[] => sim.advanceTo(sim.state.wakeAt ?? sim.now + 100);

// A follower reports another node's term once, when a lease operation first shows it, as the
// Watcher's followers do.
describe('primaryChanged on a follower', () => {
  it('reports the first leader seen, once per term', () => {
    const m = follower();
    expect(changes(m.reply(taken('alpha', 3)))).toEqual(['alpha@3']);
    tick(m);
    expect(changes(m.reply(taken('alpha', 3)))).toEqual([]);
  });

  it('reports a new leader after a free lease, not the gap', () => {
    // alpha releases: the next read finds the lease free (nothing reported), then beta's term.
    const m = follower();
    m.reply(taken('alpha', 3));
    tick(m);
    expect(changes(m.reply(vacant))).toEqual([]);
    tick(m);
    expect(changes(m.reply(taken('beta', 4)))).toEqual(['beta@4']);
    expect(m.state.followed).toEqual({ nodeId: 'beta', revision: 4 });
  });

  it('reports the same node again for a new revision only', () => {
    const m = follower();
    m.reply(taken('alpha', 3));
    tick(m);
    m.reply(vacant);
    tick(m);
    expect(changes(m.reply(taken('alpha', 3)))).toEqual([]);
    tick(m);
    expect(changes(m.reply(taken('alpha', 5)))).toEqual(['alpha@5']);
  });

  it('never reports its own lease', () => {
    const m = follower();
    const effects = m.reply({ kind: 'acquire', outcome: 'acquired', revision: 1, from: 'vacant', duplicate: false });
    expect(m.state.role).toBe('primary');
    expect(changes(effects)).toEqual([]);
  });

  it('reports the node that took the lease from it', () => {
    const m = follower();
    m.reply({ kind: 'acquire', outcome: 'acquired', revision: 1, from: 'vacant', duplicate: false });
    tick(m);
    const effects = m.reply({ kind: 'refresh', outcome: 'lost', leader: { nodeId: 'other', revision: 2, priority: 1 }, duplicate: false });
    expect(m.state.role).toBe('secondary');
    expect(changes(effects)).toEqual(['other@2']);
  });
});
