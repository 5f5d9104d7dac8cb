/**
 * The lease machine's `primaryChanged` effect on a simulated clock: a follower reports another
 * node's term once, when a lease operation first shows it, as the Watcher's followers do.
 * Nothing here touches Redis, timers or Date.now.
 */
import { describe, expect, it } from 'vitest';
import {
  initialLeaseState,
  leaseStep,
  type LeaseEffect,
  type LeaseInput,
  type LeaseMachineState,
  type OpReply,
} from '../../../src/core/lease-machine.js';

function machine(): { feed: (input: LeaseInput) => LeaseEffect[]; reply: (r: OpReply) => LeaseEffect[]; tick: () => LeaseEffect[]; state: () => LeaseMachineState } {
  let state = initialLeaseState({
    nodeId: 'me',
    priority: 2,
    strategy: 'race',
    tickInterval: 100,
    leaseTTL: 1000,
    maxDrift: 500,
    stopTimeout: 1000,
    handoverTimeout: 1000,
    failureHoldOff: 1000,
  });
  let now = 0;
  const feed = (input: LeaseInput): LeaseEffect[] => {
    const r = leaseStep(state, input, { now, random: () => 0.5 });
    state = r.state;
    return [...r.effects];
  };
  return {
    feed,
    state: () => state,
    reply: (reply) => {
      const op = state.op;
      if (op === undefined) throw new Error('no op in flight');
      return feed({ type: 'opResult', id: op.id, reply });
    },
    tick: () => {
      now = state.wakeAt ?? now + 100;
      return feed({ type: 'tick' });
    },
  };
}

const taken = (nodeId: string, revision: number): OpReply => ({
  kind: 'acquire',
  outcome: 'taken',
  leader: { nodeId, revision, priority: 1 },
  duplicate: false,
});
const vacant: OpReply = { kind: 'acquire', outcome: 'taken', leader: undefined, duplicate: false };
const changes = (effects: readonly LeaseEffect[]) =>
  effects.filter((e) => e.type === 'primaryChanged').map((e) => (e.type === 'primaryChanged' ? `${e.nodeId}@${e.revision}` : ''));

describe('primaryChanged on a follower', () => {
  it('reports the first leader seen, once per term', () => {
    const m = machine();
    m.feed({ type: 'start' });
    m.feed({ type: 'connected' });
    expect(changes(m.reply(taken('alpha', 3)))).toEqual(['alpha@3']);
    m.tick();
    expect(changes(m.reply(taken('alpha', 3)))).toEqual([]);
  });

  it('reports a new leader after a free lease, not the gap', () => {
    // alpha releases: the next read finds the lease free (nothing reported), then beta's term.
    const m = machine();
    m.feed({ type: 'start' });
    m.feed({ type: 'connected' });
    m.reply(taken('alpha', 3));
    m.tick();
    expect(changes(m.reply(vacant))).toEqual([]);
    m.tick();
    expect(changes(m.reply(taken('beta', 4)))).toEqual(['beta@4']);
    expect(m.state().followed).toEqual({ nodeId: 'beta', revision: 4 });
  });

  it('reports the same node again for a new revision only', () => {
    const m = machine();
    m.feed({ type: 'start' });
    m.feed({ type: 'connected' });
    m.reply(taken('alpha', 3));
    m.tick();
    m.reply(vacant);
    m.tick();
    expect(changes(m.reply(taken('alpha', 3)))).toEqual([]);
    m.tick();
    expect(changes(m.reply(taken('alpha', 5)))).toEqual(['alpha@5']);
  });

  it('never reports its own lease', () => {
    const m = machine();
    m.feed({ type: 'start' });
    m.feed({ type: 'connected' });
    const effects = m.reply({ kind: 'acquire', outcome: 'acquired', revision: 1, from: 'vacant', duplicate: false });
    expect(m.state().role).toBe('primary');
    expect(changes(effects)).toEqual([]);
  });

  it('reports the node that took the lease from it', () => {
    const m = machine();
    m.feed({ type: 'start' });
    m.feed({ type: 'connected' });
    m.reply({ kind: 'acquire', outcome: 'acquired', revision: 1, from: 'vacant', duplicate: false });
    m.tick();
    const effects = m.reply({ kind: 'refresh', outcome: 'lost', leader: { nodeId: 'other', revision: 2, priority: 1 }, duplicate: false });
    expect(m.state().role).toBe('secondary');
    expect(changes(effects)).toEqual(['other@2']);
  });
});
