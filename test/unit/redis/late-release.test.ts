/**
 * The interleaving behind the two primaries of the Redis chaos run with server pauses
 * (chaos/README.md), on a simulated clock: the lease machine of n2 runs against the in-memory
 * store (the scripts' semantics), and its drift step-down's release is executed late, after the
 * acquire n2 sent later (what the NOSCRIPT round trip of an EVALSHA did on a real server).
 */
import { describe, expect, it } from 'vitest';
import {
  initialLeaseState,
  leaseStep,
  type LeaseEffect,
  type LeaseInput,
  type LeaseMachineState,
} from '../../../src/core/lease-machine.js';
import { MemoryLeaseServer, MemoryLeaseStore } from '../../../src/transport/redis/memory-lease-store.js';

const TTL = 1000;

function world() {
  let now = 0;
  const server = new MemoryLeaseServer(() => now);
  const mk = (nodeId: string) =>
    new MemoryLeaseStore(server, { nodeId, session: `${nodeId}-s`, priority: 1, strategy: 'race', leaseTTL: TTL, eventsLimit: 10 });
  let state: LeaseMachineState = initialLeaseState({
    nodeId: 'n2',
    priority: 1,
    strategy: 'race',
    tickInterval: 100,
    leaseTTL: TTL,
    maxDrift: 500,
    stopTimeout: 1000,
    handoverTimeout: 1000,
    failureHoldOff: 1000,
  });
  const log: LeaseEffect[] = [];
  const feed = (input: LeaseInput): LeaseEffect[] => {
    const r = leaseStep(state, input, { now, random: () => 0.5 });
    state = r.state;
    log.push(...r.effects);
    return [...r.effects];
  };
  return {
    server,
    n2: mk('n2'),
    n1: mk('n1'),
    feed,
    log,
    get state() {
      return state;
    },
    at(t: number) {
      now = t;
    },
  };
}

const ofType = <T extends LeaseEffect['type']>(effects: readonly LeaseEffect[], type: T) =>
  effects.filter((e): e is Extract<LeaseEffect, { type: T }> => e.type === type);
const roles = (effects: readonly LeaseEffect[]) =>
  ofType(effects, 'notify').map((e) => `${e.notification.to}:${e.notification.reason}@${e.notification.epoch}`);

/** Runs n2's op in flight on its store and feeds the answer back. */
async function answer(w: ReturnType<typeof world>): Promise<LeaseEffect[]> {
  const op = w.state.op;
  if (op === undefined) throw new Error('no op in flight');
  const args = { eligible: true, knownRevision: w.state.knownRevision };
  return w.feed({ type: 'opResult', id: op.id, reply: await w.n2[op.kind](args) });
}

describe('a drift release that runs after the next acquire', () => {
  it('leaves the term n2 took again and announced', async () => {
    const w = world();
    w.feed({ type: 'start' });
    w.feed({ type: 'connected' });
    expect(roles(await answer(w))).toEqual(['primary:vacant@1']);
    w.feed({ type: 'startSettled', term: 1, ok: true });

    // Redis stops answering at 0: refreshes fail until maxDrift passes since the acquire.
    for (let t = 100; t < 500 && w.state.phase === 'leader'; t += 100) {
      w.at(t);
      w.feed({ type: 'tick' });
      if (w.state.op !== undefined) w.feed({ type: 'opFailed', id: w.state.op.id, detail: 'Command timed out' });
    }
    w.at(500);
    const down = w.feed({ type: 'tick' });
    expect(roles(down)).toEqual(['secondary:drift@1']);
    const [late] = ofType(down, 'release');
    // The release names the term it gives up.
    expect(late).toMatchObject({ reason: 'drift', revision: 1 });
    if (late === undefined) throw new Error('no release');
    if (w.state.op !== undefined) w.feed({ type: 'opFailed', id: w.state.op.id, detail: 'Command timed out' });
    w.feed({ type: 'stopSettled', term: 1 });

    // Redis answers again; the release has not run yet: n2's acquire finds the lease in its session.
    w.at(600);
    w.feed({ type: 'tick' });
    expect(w.state.op?.kind).toBe('acquire');
    const again = await answer(w);
    expect(roles(again)).toEqual(['primary:reacquired@2']);

    // Now the late release: it must not delete the term n2 leads with.
    expect(await w.n2.release(late.reason, late.deregister, late.revision)).toBe(false);
    expect(w.server.current()).toMatchObject({ node: 'n2', rev: 2 });
    expect(await w.n1.acquire({ eligible: true, knownRevision: 0 })).toMatchObject({ outcome: 'taken', leader: { nodeId: 'n2', revision: 2 } });
    // Its next refresh succeeds: it is the only primary.
    const next = w.state.wakeAt;
    if (next === undefined || next >= 1100) throw new Error(`no refresh due: ${String(next)}`);
    w.at(next);
    w.feed({ type: 'tick' });
    expect(w.state.op?.kind).toBe('refresh');
    expect(roles(await answer(w))).toEqual([]);
    expect(w.state.role).toBe('primary');
  });

  it('without the revision, deleted it: the standby took over (the cause)', async () => {
    const w = world();
    expect(await w.n2.acquire({ eligible: true, knownRevision: 0 })).toMatchObject({ outcome: 'acquired', revision: 1 });
    expect(await w.n2.acquire({ eligible: true, knownRevision: 1 })).toMatchObject({ outcome: 'acquired', revision: 2, from: 'self' });
    // A release that checks the session only (as the script did) deletes term 2.
    expect(await w.n2.release('drift', false)).toBe(true);
    expect(await w.n1.acquire({ eligible: true, knownRevision: 2 })).toMatchObject({ outcome: 'acquired', revision: 3, from: 'released' });
  });
});
