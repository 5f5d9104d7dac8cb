/**
 * The machine's per-peer tables stay bounded whatever peers do: presence beyond
 * MAX_PRESENCE_MEMBERS is dropped and counted, liveness probes are answered at most once per
 * PROBE_ANSWER_GAP, new subscribers are welcomed at most once per WELCOME_GAP.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  initialState,
  MAX_PRESENCE_MEMBERS,
  PROBE_ANSWER_GAP,
  step,
  WELCOME_GAP,
  type Effect,
  type Input,
  type MachineConfig,
  type MachineState,
} from '../../../src/core/heartbeat-machine.js';
import { TEST_MACHINE_CONFIG } from './machine-config.js';

const CONFIG: MachineConfig = Object.freeze({ ...TEST_MACHINE_CONFIG, instanceId: 'p', initialRole: 'primary' });

/** A machine driven to primary: bind, epoch, state file and onPromote all succeed. */
function primary(): { state: MachineState; now: number; send: (input: Input) => Effect[] } {
  const box = { state: initialState(CONFIG, true), now: 0 };
  const send = (input: Input): Effect[] => {
    const r = step(box.state, input, { now: box.now, random: () => 0.5 });
    box.state = r.state;
    return [...r.effects];
  };
  const queue: Input[] = [{ type: 'start' }];
  for (let input = queue.shift(); input !== undefined; input = queue.shift()) {
    for (const e of send(input)) {
      if (e.type === 'bind') queue.push({ type: 'bindResult', outcome: 'bound' });
      if (e.type === 'loadEpoch') queue.push({ type: 'epochLoaded', fileEpoch: 0 });
      if (e.type === 'saveState') queue.push({ type: 'stateSaved', ok: true });
      if (e.type === 'callPromote') queue.push({ type: 'promoteSettled', term: e.term, ok: true });
    }
  }
  expect(box.state.phase).toBe('primary');
  return {
    get state() {
      return box.state;
    },
    get now() {
      return box.now;
    },
    set now(t: number) {
      box.now = t;
    },
    send,
  } as never;
}

describe('presence table', () => {
  it(`keeps at most ${MAX_PRESENCE_MEMBERS} members and counts the ids it ignored`, () => {
    const m = primary();
    const fakes = 3000;
    for (let i = 0; i < fakes; i++) m.send({ type: 'presence', joined: true, instanceId: `fake-${i}`, priority: 0 });
    expect(m.state.members.size).toBe(MAX_PRESENCE_MEMBERS);
    expect(m.state.counters.presenceDropped).toBe(fakes - MAX_PRESENCE_MEMBERS);
    // Members that leave free room again; unsubscriptions of unknown ids change nothing.
    m.send({ type: 'presence', joined: false, instanceId: 'fake-0', priority: 0 });
    m.send({ type: 'presence', joined: false, instanceId: 'never-joined', priority: 0 });
    expect(m.state.members.size).toBe(MAX_PRESENCE_MEMBERS - 1);
    m.send({ type: 'presence', joined: true, instanceId: 'real', priority: 1 });
    expect(m.state.members.has('real')).toBe(true);
    expect(m.state.role).toBe('primary');
  });

  it('warns once when the table is full, not once per dropped id', () => {
    const m = primary();
    const warnings: string[] = [];
    for (let i = 0; i < MAX_PRESENCE_MEMBERS + 50; i++) {
      for (const e of m.send({ type: 'presence', joined: true, instanceId: `f${i}`, priority: 3 })) {
        if (e.type === 'log' && e.level === 'warn') warnings.push(e.message);
      }
    }
    expect(warnings).toHaveLength(1);
  });

  it('stays within the bound under any sequence of joins and leaves', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ joined: fc.boolean(), id: fc.integer({ min: 0, max: 1500 }) }), { maxLength: 3000 }),
        (events) => {
          const m = primary();
          for (const e of events) m.send({ type: 'presence', joined: e.joined, instanceId: `n${e.id}`, priority: 1 });
          expect(m.state.members.size).toBeLessThanOrEqual(MAX_PRESENCE_MEMBERS);
          for (const member of m.state.members.values()) expect(member.count).toBeGreaterThan(0);
          expect(m.state.role).toBe('primary');
        },
      ),
      { numRuns: 20 },
    );
  });
});

describe('liveness probe answers', () => {
  it(`answers one probe per ${PROBE_ANSWER_GAP} ms and counts the others`, () => {
    const m = primary();
    m.now = 1000;
    const publishes = (effects: Effect[]): number => effects.filter((e) => e.type === 'publish').length;
    let answered = 0;
    for (let i = 0; i < 1000; i++) answered += publishes(m.send({ type: 'livenessProbed' }));
    expect(answered).toBe(1);
    expect(m.state.counters.probesIgnored).toBe(999);
    m.now = 1000 + PROBE_ANSWER_GAP;
    expect(publishes(m.send({ type: 'livenessProbed' }))).toBe(1);
  });
});

describe('welcome heartbeats', () => {
  type Machine = ReturnType<typeof primary>;
  const publishes = (effects: Effect[]): Array<Extract<Effect, { type: 'publish' }>> =>
    effects.filter((e): e is Extract<Effect, { type: 'publish' }> => e.type === 'publish');
  /** Moves the time to `t`, ticking at every wake-up on the way, as the driver's timer would. */
  const advance = (m: Machine, t: number): Effect[] => {
    const out: Effect[] = [];
    for (let at = m.state.wakeAt; at !== undefined && at <= t; at = m.state.wakeAt) {
      m.now = Math.max(m.now, at);
      out.push(...m.send({ type: 'tick' }));
    }
    m.now = t;
    return out;
  };

  it('greets a new subscriber with a heartbeat at once', () => {
    const m = primary();
    advance(m, 1050);
    const cadence = m.state.nextHeartbeatAt;
    const sent = publishes(m.send({ type: 'subscribed' }));
    expect(sent).toEqual([{ type: 'publish', topic: 'instance.heartbeat', epoch: m.state.epoch, seq: m.state.seq, members: [] }]);
    expect(m.state.counters.welcomesSent).toBe(1);
    // An extra beat: the regular cadence is left as it was.
    expect(m.state.nextHeartbeatAt).toBe(cadence);
  });

  it(`folds subscribers within ${WELCOME_GAP} ms into one later welcome`, () => {
    // Subscribers arriving right after a welcome missed it (their subscription was not in force
    // yet): they share one more, when the gap ends, not a heartbeatInterval later.
    const m = primary();
    advance(m, 1050);
    expect(publishes(m.send({ type: 'subscribed' }))).toHaveLength(1);
    advance(m, 1053);
    expect(publishes(m.send({ type: 'subscribed' }))).toEqual([]);
    advance(m, 1057);
    expect(publishes(m.send({ type: 'subscribed' }))).toEqual([]);
    expect(m.state.wakeAt).toBe(1050 + WELCOME_GAP);
    expect(publishes(advance(m, 1050 + WELCOME_GAP)).map((p) => p.topic)).toEqual(['instance.heartbeat']);
    expect(m.state.counters).toMatchObject({ welcomesSent: 2, welcomesCoalesced: 2 });
    expect(m.state.welcomeDueAt).toBeUndefined();
  });

  it('sends at most one welcome per gap under a subscription flood', () => {
    const m = primary();
    advance(m, 1050);
    const flood = 20_000;
    const regularBefore = m.state.counters.heartbeatsSent;
    let sent = 0;
    // 20 subscriptions per ms for one second.
    for (let i = 0; i < flood; i++) {
      sent += publishes(advance(m, 1050 + Math.floor(i / 20))).length;
      sent += publishes(m.send({ type: 'subscribed' })).length;
    }
    sent += publishes(advance(m, 1050 + 1000)).length;
    const regular = m.state.counters.heartbeatsSent - regularBefore;
    const { welcomesSent, welcomesCoalesced } = m.state.counters;
    expect(regular).toBeLessThanOrEqual(11);
    expect(welcomesSent).toBeLessThanOrEqual(1000 / WELCOME_GAP + 1);
    expect(sent).toBe(welcomesSent + regular);
    expect(welcomesCoalesced).toBeGreaterThanOrEqual(flood - welcomesSent);
    expect(m.state.role).toBe('primary');
  });

  it('lets a regular heartbeat serve a welcome that was due', () => {
    const m = primary();
    advance(m, 1000);
    const beat = m.state.nextHeartbeatAt ?? Number.NaN;
    advance(m, beat - 5);
    m.send({ type: 'subscribed' });
    advance(m, beat - 3);
    m.send({ type: 'subscribed' });
    expect(m.state.welcomeDueAt).toBe(beat - 5 + WELCOME_GAP);
    // The regular beat at `beat` comes first and serves it; nothing more at beat - 5 + gap.
    expect(publishes(advance(m, beat + WELCOME_GAP))).toHaveLength(1);
    expect(m.state.welcomeDueAt).toBeUndefined();
    expect(m.state.counters.welcomesSent).toBe(1);
  });

  it('welcomes nobody before its term is announced, nor as a secondary', () => {
    // Claiming (bound, epoch not yet recorded): the promotion's own heartbeat, still to come,
    // reaches whoever subscribed by then.
    let state = initialState(CONFIG, true);
    const go = (input: Input): Effect[] => {
      const r = step(state, input, { now: 0, random: () => 0.5 });
      state = r.state;
      return [...r.effects];
    };
    go({ type: 'start' });
    go({ type: 'bindResult', outcome: 'bound' });
    expect(state.phase).toBe('claiming');
    expect(publishes(go({ type: 'subscribed' }))).toEqual([]);
    const follower = initialState({ ...CONFIG, initialRole: 'secondary' }, true);
    const r = step(step(follower, { type: 'start' }, { now: 0, random: () => 0.5 }).state, { type: 'subscribed' }, { now: 1, random: () => 0.5 });
    expect(publishes([...r.effects])).toEqual([]);
    expect(r.state.counters.welcomesSent).toBe(0);
  });
});
