/**
 * The machine's per-peer tables stay bounded whatever peers do: presence beyond
 * MAX_PRESENCE_MEMBERS is dropped and counted, liveness probes are answered at most once per
 * PROBE_ANSWER_GAP.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  initialState,
  MAX_PRESENCE_MEMBERS,
  PROBE_ANSWER_GAP,
  step,
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
