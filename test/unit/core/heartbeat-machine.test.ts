/**
 * Scenario tests of the pure heartbeat machine. A tiny in-test driver keeps a fake time, feeds
 * scripted inputs and answers effects the way `src/watcher.ts` does (`bind` -> `bindResult`,
 * `loadEpoch` -> `epochLoaded`, `saveState` -> `stateSaved`, `callPromote` -> `promoteSettled`,
 * `callDemote` -> `demoteSettled`, `close` -> `closed`, a `tick` at `state.wakeAt`). No sockets,
 * no timers: a 300 ms timeout is a loop of pure calls.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fullStep,
  initialState,
  ownHeartbeatSeenAt,
  step,
  type Effect,
  type Input,
  type MachineConfig,
  type MachineState,
  type Notification,
} from '../../../src/core/heartbeat-machine.js';
import type { Topic } from '../../../src/protocol/messages.js';
import { TEST_MACHINE_CONFIG } from './machine-config.js';

const BASE: MachineConfig = TEST_MACHINE_CONFIG;

const WALL = 1_700_000_000_000;

/** One machine, a fake time and the inputs a driver would feed it. */
class Driver {
  now = 0;
  state: MachineState;
  random: () => number = () => 0.5;
  readonly history: Array<{ readonly at: number; readonly input: Input; readonly effects: readonly Effect[] }> = [];

  constructor(overrides: Partial<MachineConfig> = {}, enabled = true, knownEpoch = 0) {
    this.state = initialState({ ...BASE, ...overrides }, enabled, knownEpoch);
  }

  send(input: Input): Effect[] {
    const { state, effects } = step(this.state, input, { now: this.now, random: this.random });
    this.state = state;
    this.history.push({ at: this.now, input, effects });
    return [...effects];
  }

  /** Moves the time to `t`, delivering a tick at every `wakeAt` on the way, as the driver's timer would. */
  advanceTo(t: number): Effect[] {
    const out: Effect[] = [];
    let lastTickAt = -1;
    let sameInstant = 0;
    for (;;) {
      const at = this.state.wakeAt;
      if (at === undefined || at > t) break;
      if (at < this.now) throw new Error(`wakeAt ${at} lies in the past (now ${this.now})`);
      sameInstant = at === lastTickAt ? sameInstant + 1 : 0;
      // A machine that asks to be woken again at the instant it was just woken would spin the
      // driver's timer.
      if (sameInstant > 2) throw new Error(`busy wake-up loop at ${at} (phase ${this.state.phase})`);
      lastTickAt = at;
      this.now = at;
      out.push(...this.send({ type: 'tick' }));
    }
    this.now = t;
    return out;
  }

  /** Jumps to `t` without delivering the ticks in between: this process was stalled. */
  stallUntil(t: number): void {
    this.now = t;
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
const farewell = (from: string, epoch: number, seq = 1): Input => wire('instance.shutdown', from, epoch, seq);

const BOUND: Input = { type: 'bindResult', outcome: 'bound' };
const IN_USE: Input = { type: 'bindResult', outcome: 'in-use' };
const SAVED: Input = { type: 'stateSaved', ok: true };
const epochLoaded = (fileEpoch: number): Input => ({ type: 'epochLoaded', fileEpoch });
const promoteOk = (term: number): Input => ({ type: 'promoteSettled', term, ok: true });
const promoteFailed = (term: number, detail = 'boom'): Input => ({ type: 'promoteSettled', term, ok: false, detail });
const demoteSettled = (term: number): Input => ({ type: 'demoteSettled', term });

/** Effects without the log lines. */
const acts = (effects: readonly Effect[]): Effect[] => effects.filter((e) => e.type !== 'log');
const kinds = (effects: readonly Effect[]): string[] => acts(effects).map((e) => e.type);
const notes = (effects: readonly Effect[]): Notification[] =>
  effects.flatMap((e) => (e.type === 'notify' ? [e.notification] : []));
function only<K extends Effect['type']>(effects: readonly Effect[], type: K): Array<Extract<Effect, { type: K }>> {
  return effects.filter((e): e is Extract<Effect, { type: K }> => e.type === type);
}
const hasBind = (effects: readonly Effect[]): boolean => effects.some((e) => e.type === 'bind');

/** A started secondary (initial role `secondary`). */
function follower(overrides: Partial<MachineConfig> = {}, enabled = true): Driver {
  const d = new Driver({ initialRole: 'secondary', ...overrides }, enabled);
  d.send({ type: 'start' });
  return d;
}

/** Feeds heartbeats from `from` every `every` ms in [start, end], ticking in between. */
function heartbeats(d: Driver, from: string, epoch: number, start: number, end: number, every = 100): Effect[] {
  const out: Effect[] = [];
  let seq = 1;
  for (let t = start; t <= end; t += every) {
    out.push(...d.advanceTo(t));
    out.push(...d.send(hb(from, epoch, seq++)));
  }
  return out;
}

/**
 * Answers a pending `bind` with success and walks the claim through the state file, up to the
 * `callPromote` effect, which it returns.
 */
function claim(d: Driver, fileEpoch = 0): Extract<Effect, { type: 'callPromote' }> {
  expect(kinds(d.send(BOUND))).toEqual(['loadEpoch']);
  const save = only(d.send(epochLoaded(fileEpoch)), 'saveState');
  expect(save).toHaveLength(1);
  const promote = only(d.send(SAVED), 'callPromote');
  expect(promote).toHaveLength(1);
  return promote[0] as Extract<Effect, { type: 'callPromote' }>;
}

/** An `auto` machine that started on a free endpoint and whose onPromote is still running (term 1). */
function promotingAtStart(fileEpoch = 3, overrides: Partial<MachineConfig> = {}): Driver {
  const d = new Driver({ initialRole: 'auto', ...overrides });
  expect(kinds(d.send({ type: 'start' }))).toEqual(['bind']);
  claim(d, fileEpoch);
  return d;
}

/** A follower of p (epoch 3) that took over after p's shutdown and runs onPromote for epoch 4 (term 1). */
function promotingAfterShutdown(): Driver {
  const d = follower();
  d.send(hb('p', 3));
  expect(hasBind(d.send(farewell('p', 3)))).toBe(true);
  expect(claim(d, 3)).toEqual({ type: 'callPromote', term: 1, epoch: 4, reason: 'shutdown' });
  return d;
}

/** An `auto` machine that became primary at time 0 with epoch `fileEpoch + 1`, term 1. */
function primaryAtStart(fileEpoch = 3, overrides: Partial<MachineConfig> = {}): Driver {
  const d = promotingAtStart(fileEpoch, overrides);
  d.send(promoteOk(1));
  expect(d.state.role).toBe('primary');
  return d;
}

describe('heartbeat machine: detection and promotion', () => {
  it('promotes after heartbeatTimeout of silence', () => {
    const d = follower();
    d.advanceTo(10);
    expect(notes(d.send(hb('p', 3)))).toEqual([
      { type: 'primaryChanged', instanceId: 'p', epoch: 3, pid: 4242, host: 'host-1' },
    ]);

    const lost = d.advanceTo(310);
    expect(kinds(lost)).toEqual(['notify', 'bind']);
    expect(notes(lost)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'silence', willPromote: false, reason: 'suspected' }]);
    expect(d.state.phase).toBe('acquiring');

    expect(d.send(BOUND)).toEqual([{ type: 'loadEpoch' }]);
    expect(d.state).toMatchObject({ phase: 'claiming', holdsEndpoint: true, role: 'secondary' });
    expect(d.send(epochLoaded(0))).toEqual([{ type: 'saveState', epoch: 4, primary: true }]);
    expect(d.send(SAVED)).toEqual([
      { type: 'publish', topic: 'instance.promoted', epoch: 4, seq: 1 },
      { type: 'publish', topic: 'instance.heartbeat', epoch: 4, seq: 2, members: [] },
      { type: 'callPromote', term: 1, epoch: 4, reason: 'silence' },
    ]);
    expect(d.state).toMatchObject({ phase: 'promoting', role: 'secondary', promoteOutstanding: true });

    const promoted = d.send(promoteOk(1));
    expect(notes(promoted)).toEqual([{ type: 'roleChanged', from: 'secondary', to: 'primary', epoch: 4, reason: 'silence' }]);
    expect(kinds(promoted)).toEqual(['notify']);
    expect(d.state).toMatchObject({ phase: 'primary', role: 'primary', epoch: 4, promotedTerm: 1, holdsEndpoint: true });
    expect(d.state.counters.promotions).toBe(1);
  });

  it('does not promote before heartbeatTimeout', () => {
    const d = follower();
    // Heartbeats every 250 ms: never 300 ms of silence.
    const fx = heartbeats(d, 'p', 3, 10, 5000, 250);
    expect(hasBind(fx)).toBe(false);
    expect(notes(fx).filter((n) => n.type === 'primaryLost')).toEqual([]);

    // 299 ms of silence after the last heartbeat (at 4760): still not lost.
    expect(d.advanceTo(4760 + 299).some((e) => e.type === 'bind' || e.type === 'notify')).toBe(false);
    expect(d.state).toMatchObject({ phase: 'secondary', loss: undefined });
    expect(hasBind(d.advanceTo(4760 + 300))).toBe(true);
  });

  it('measures silence from the start when no primary was ever heard', () => {
    const d = follower();
    expect(hasBind(d.advanceTo(299))).toBe(false);
    const fx = d.advanceTo(300);
    expect(notes(fx)).toEqual([
      { type: 'primaryLost', instanceId: undefined, epoch: undefined, cause: 'silence', willPromote: false, reason: 'suspected' },
    ]);
    expect(hasBind(fx)).toBe(true);
  });

  it('promotes at once on instance.shutdown', () => {
    const d = follower();
    d.advanceTo(10);
    d.send(hb('p', 3));
    d.advanceTo(50);
    const fx = d.send(farewell('p', 3, 2));
    expect(kinds(fx)).toEqual(['notify', 'bind']);
    expect(notes(fx)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'shutdown', willPromote: true, reason: 'taking-over' }]);
    expect(d.state.primary).toBeUndefined();
    expect(claim(d, 3)).toEqual({ type: 'callPromote', term: 1, epoch: 4, reason: 'shutdown' });
  });

  it('a disabled secondary reports the loss and does not promote', () => {
    const silent = follower({}, false);
    silent.advanceTo(10);
    silent.send(hb('p', 3));
    const fx = silent.advanceTo(5000);
    expect(notes(fx)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'silence', willPromote: false, reason: 'disabled' }]);
    expect(hasBind(fx)).toBe(false);
    expect(silent.state).toMatchObject({ phase: 'secondary', role: 'secondary', enabled: false, holdsEndpoint: false });
    expect(silent.state.loss).toMatchObject({ cause: 'silence', since: 310, instanceId: 'p' });

    const stopped = follower({}, false);
    stopped.send(hb('p', 3));
    const fx2 = [...stopped.send(farewell('p', 3)), ...stopped.advanceTo(5000)];
    expect(notes(fx2)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'shutdown', willPromote: false, reason: 'disabled' }]);
    expect(hasBind(fx2)).toBe(false);
    // A disconnect does not make a disabled node probe the endpoint either.
    expect(hasBind(stopped.send({ type: 'disconnected' }))).toBe(false);
  });

  it('setEnabled(true) while the primary is lost promotes at once', () => {
    const d = follower({}, false);
    d.advanceTo(10);
    d.send(hb('p', 3));
    d.advanceTo(777);
    expect(d.state.loss?.cause).toBe('silence');
    const fx = d.send({ type: 'setEnabled', enabled: true });
    expect(kinds(fx)).toEqual(['bind']);
    expect(d.state).toMatchObject({ phase: 'acquiring', enabled: true });
    expect(claim(d, 0)).toEqual({ type: 'callPromote', term: 1, epoch: 4, reason: 'silence' });
  });

  it('setEnabled(true) while the primary is alive does not bind', () => {
    const d = follower({}, false);
    d.send(hb('p', 3));
    expect(kinds(d.send({ type: 'setEnabled', enabled: true }))).toEqual([]);
    expect(hasBind(heartbeats(d, 'p', 3, 100, 2000))).toBe(false);
  });

  it('a lost bind race leaves it secondary and it follows the winner', () => {
    const d = follower();
    d.advanceTo(10);
    d.send(hb('p', 3));
    d.advanceTo(50);
    expect(hasBind(d.send(farewell('p', 3)))).toBe(true);
    expect(kinds(d.send(IN_USE))).toEqual([]);
    expect(d.state).toMatchObject({ phase: 'secondary', role: 'secondary', holdsEndpoint: false, nextAttemptAt: 55 });
    expect(d.state.counters.lostRaces).toBe(1);

    d.advanceTo(52);
    const fx = d.send(wire('instance.promoted', 'c', 4));
    expect(notes(fx)).toEqual([{ type: 'primaryChanged', instanceId: 'c', epoch: 4, pid: 4242, host: 'host-1' }]);
    expect(d.state).toMatchObject({ loss: undefined, nextAttemptAt: undefined, epoch: 4, knownEpoch: 4 });
    expect(d.state.primary?.instanceId).toBe('c');

    expect(hasBind(heartbeats(d, 'c', 4, 60, 3000))).toBe(false);
    expect(d.state.counters.lostRaces).toBe(1);
  });

  it('retries the bind quickly after a shutdown while the old primary still holds the endpoint', () => {
    const d = follower();
    d.advanceTo(10);
    d.send(hb('p', 3));
    d.advanceTo(50);
    let fx = d.send(farewell('p', 3));
    const bindTimes: number[] = [];
    while (bindTimes.length < 8) {
      if (hasBind(fx)) {
        bindTimes.push(d.now);
        fx = d.send(IN_USE);
        continue;
      }
      fx = d.advanceTo(d.state.wakeAt as number);
    }
    // 5 ms doubling, capped at heartbeatInterval; after heartbeatTimeout it falls back to the interval.
    expect(bindTimes).toEqual([50, 55, 65, 85, 125, 205, 305, 405]);
    expect(d.state.counters.lostRaces).toBe(8);
    expect(d.state.nextAttemptAt).toBe(505);

    // The old primary finally let go: the next bind takes over.
    expect(hasBind(d.advanceTo(504))).toBe(false);
    expect(hasBind(d.advanceTo(505))).toBe(true);
    expect(claim(d, 3)).toEqual({ type: 'callPromote', term: 1, epoch: 4, reason: 'shutdown' });
  });

  it('a secondary that suspects a silent primary still holding the endpoint retries every heartbeatInterval', () => {
    const d = follower();
    d.send(hb('p', 3));
    let fx = d.advanceTo(300);
    const bindTimes: number[] = [];
    while (bindTimes.length < 6) {
      if (hasBind(fx)) {
        bindTimes.push(d.now);
        fx = d.send(IN_USE);
        continue;
      }
      fx = d.advanceTo(d.state.wakeAt as number);
    }
    expect(bindTimes).toEqual([300, 400, 500, 600, 700, 800]);
  });

  it('a secondary at rest is not woken between beats', () => {
    // Heartbeats 100 ms apart, each arriving a little late (the primary's timer, the wire): a
    // check planned one interval after each would wake the process before every beat.
    const d = follower();
    const ticks: number[] = [];
    let seq = 1;
    for (let t = 0; t <= 2000; t += 100) {
      const before = d.history.length;
      d.advanceTo(t + 20);
      for (const h of d.history.slice(before)) if (h.input.type === 'tick') ticks.push(h.at);
      d.send(hb('p', 3, seq++));
    }
    expect(ticks).toEqual([]);
    expect(d.state.wakeAt).toBe(2020 + 300 - 100);
  });

  it('a stall just past the silence deadline still drains', () => {
    // Last heartbeat at 300; the process stalls from 350 to 620, just past the deadline (600):
    // the check planned at 500 runs 120 ms late, so the heartbeats queued meanwhile are read
    // before the silence is judged.
    const d = follower();
    heartbeats(d, 'p', 3, 0, 300);
    d.advanceTo(350);
    d.stallUntil(620);
    const fx = d.send({ type: 'tick' });
    expect(notes(fx).filter((n) => n.type === 'primaryLost')).toEqual([]);
    expect(d.state.counters.stalls).toBe(1);
    expect(d.state.drainUntil).toBe(620 + BASE.drainDelay);
    d.send(hb('p', 3, 9));
    const after = heartbeats(d, 'p', 3, 700, 1500);
    expect(notes(after).filter((n) => n.type === 'primaryLost')).toEqual([]);
    expect(hasBind(after)).toBe(false);
  });

  it('a stall past the deadline drains with a short timeout', () => {
    // heartbeatTimeout 150 with heartbeatInterval 100: no room for one check per silence
    // window, so the check stays one interval after each step. Last heartbeat at 300; the process
    // stalls from 360 to 455, just past the deadline (450), with the 400 heartbeat queued.
    const d = follower({ heartbeatInterval: 100, heartbeatTimeout: 150, stallThreshold: 50, drainDelay: 50 });
    heartbeats(d, 'p', 3, 0, 300);
    d.advanceTo(360);
    d.stallUntil(455);
    const fx = d.send({ type: 'tick' });
    expect(notes(fx).filter((n) => n.type === 'primaryLost')).toEqual([]);
    expect(d.state.counters.stalls).toBe(1);
    d.send(hb('p', 3, 9));
    expect(d.state.loss).toBeUndefined();
  });

  it('a stall past the deadline drains with a 20 ms interval', () => {
    // heartbeatInterval 20 (stallThreshold 50, the watcher's floor): the check goes 51 ms before
    // the deadline, so a stall over it runs more than the threshold late. Heartbeat at 0, stall
    // from 5 to 205 (deadline 200), the 20 ms heartbeat queued.
    const d = follower({ heartbeatInterval: 20, heartbeatTimeout: 200, stallThreshold: 50, drainDelay: 20 });
    d.send(hb('p', 3, 1));
    d.advanceTo(5);
    d.stallUntil(205);
    const fx = d.send({ type: 'tick' });
    expect(notes(fx).filter((n) => n.type === 'primaryLost')).toEqual([]);
    expect(d.state.counters.stalls).toBe(1);
    d.send(hb('p', 3, 2));
    expect(d.state.loss).toBeUndefined();
  });

  it('a primary beating slower keeps the per-interval check', () => {
    // The primary beats every 350 ms, this node's interval is 100 (timeout 400): a stall can
    // begin up to 350 ms after a beat, past a check planned 100 ms before the deadline.
    const d = follower({ heartbeatInterval: 100, heartbeatTimeout: 400, stallThreshold: 50, drainDelay: 50 });
    d.send(hb('p', 3, 1));
    d.advanceTo(350);
    d.send(hb('p', 3, 2));
    expect(d.state.wakeAt).toBe(450);
  });

  it('a stalled secondary drains queued messages before judging silence', () => {
    const d = follower();
    heartbeats(d, 'p', 3, 0, 300);
    // The process stalls: its timer fires at 2000 instead of 400.
    d.stallUntil(2000);
    const fx = d.send({ type: 'tick' });
    expect(kinds(fx)).toEqual([]);
    expect(d.state).toMatchObject({ phase: 'secondary', loss: undefined, drainUntil: 2020 });
    expect(d.state.counters.stalls).toBe(1);
    expect(d.state.wakeAt).toBe(2020);

    // A heartbeat that was queued meanwhile arrives within drainDelay: no failover.
    expect(d.advanceTo(2005)).toEqual([]);
    d.send(hb('p', 3, 9));
    const after = heartbeats(d, 'p', 3, 2100, 3000);
    expect(hasBind(after)).toBe(false);
    expect(notes(after).filter((n) => n.type === 'primaryLost')).toEqual([]);
    expect(d.state.drainUntil).toBeUndefined();
  });

  it('a stalled secondary that hears nothing while draining judges the silence at the end of the drain', () => {
    const d = follower();
    heartbeats(d, 'p', 3, 0, 300);
    d.stallUntil(2000);
    expect(hasBind(d.send({ type: 'tick' }))).toBe(false);
    expect(hasBind(d.advanceTo(2019))).toBe(false);
    const fx = d.advanceTo(2020);
    expect(notes(fx)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 3, cause: 'silence', willPromote: false, reason: 'suspected' }]);
    expect(hasBind(fx)).toBe(true);
  });

  it('a secondary whose probe window a stall outlived waits for the next check without spinning', () => {
    // Priority 2 behind a live priority-1 secondary: a disconnect schedules a probe 20 ms later.
    const d = follower({ priority: 2 });
    d.send({
      type: 'message',
      wallNow: WALL,
      message: {
        version: 1,
        topic: 'instance.heartbeat',
        instanceId: 'p',
        epoch: 3,
        seq: 1,
        sentAt: WALL,
        pid: 1,
        host: 'h',
        members: [
          ['a', 2],
          ['b', 1],
        ],
      },
    });
    d.advanceTo(10);
    expect(kinds(d.send({ type: 'disconnected' }))).toEqual([]);
    expect(d.state).toMatchObject({ nextAttemptAt: 30, probeUntil: 80 });
    // Stalled past the whole window: the tick at 500 finds it closed.
    d.stallUntil(500);
    expect(hasBind(d.send({ type: 'tick' }))).toBe(false);
    expect(d.state.wakeAt).toBeGreaterThan(500);
    // Silence since the last heartbeat (0) is judged as usual, after the drain, and the
    // takeover waits this node's stagger (one better-ranked secondary: 20 ms).
    const lost = d.advanceTo(520);
    expect(notes(lost)).toMatchObject([{ type: 'primaryLost', cause: 'silence' }]);
    expect(hasBind(lost)).toBe(false);
    expect(hasBind(d.advanceTo(539))).toBe(false);
    expect(hasBind(d.advanceTo(540))).toBe(true);
  });
});

describe('heartbeat machine: failed promotions', () => {
  /** A follower of p (epoch 3) that lost it by silence at 310 and is running onPromote for epoch 4. */
  function promotingAfterSilence(random: () => number): Driver {
    const d = follower();
    d.random = random;
    d.advanceTo(10);
    d.send(hb('p', 3));
    expect(hasBind(d.advanceTo(310))).toBe(true);
    expect(claim(d, 3)).toEqual({ type: 'callPromote', term: 1, epoch: 4, reason: 'silence' });
    return d;
  }

  it('a failed onPromote releases the endpoint with a farewell and retries with jittered backoff within [0.5, 1.5] x base', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (r) => {
        const d = promotingAfterSilence(() => r);
        d.advanceTo(400);
        const fx = d.send(promoteFailed(1, 'database down'));
        const delay = Math.round(200 * (0.5 + r));
        expect(delay).toBeGreaterThanOrEqual(100);
        expect(delay).toBeLessThanOrEqual(300);
        expect(acts(fx)).toEqual([
          { type: 'release', epoch: 4, farewellSeq: 3 },
          {
            type: 'notify',
            notification: { type: 'promotionFailed', epoch: 4, reason: 'silence', detail: 'database down', retryInMs: delay },
          },
        ]);
        expect(d.state).toMatchObject({
          phase: 'secondary',
          role: 'secondary',
          holdsEndpoint: false,
          promoteOutstanding: false,
          promotedTerm: undefined,
          attempts: 1,
          nextAttemptAt: 400 + delay,
        });
        expect(d.state.loss?.cause).toBe('silence');
        expect(d.state.counters.failedPromotions).toBe(1);
        expect(hasBind(d.advanceTo(400 + delay - 1))).toBe(false);
        expect(hasBind(d.advanceTo(400 + delay))).toBe(true);
        // The retry claims a new term with a larger epoch.
        expect(claim(d, 4)).toEqual({ type: 'callPromote', term: 2, epoch: 5, reason: 'silence' });
      }),
      { numRuns: 60 },
    );
  });

  it('the jitter bounds are reached at random() = 0 and random() -> 1', () => {
    const low = promotingAfterSilence(() => 0);
    expect(notes(low.send(promoteFailed(1)))).toMatchObject([{ type: 'promotionFailed', retryInMs: 100 }]);
    const high = promotingAfterSilence(() => 0.999999);
    expect(notes(high.send(promoteFailed(1)))).toMatchObject([{ type: 'promotionFailed', retryInMs: 300 }]);
  });

  it('backoff doubles and is capped at maxRetryInterval', () => {
    const d = promotingAfterSilence(() => 0.5);
    const delays: number[] = [];
    let term = 1;
    for (let i = 0; i < 6; i++) {
      const failed = notes(d.send(promoteFailed(term)));
      const n = failed[0];
      if (n?.type !== 'promotionFailed') throw new Error('expected promotionFailed');
      delays.push(n.retryInMs);
      expect(hasBind(d.advanceTo(d.now + n.retryInMs))).toBe(true);
      term = claim(d, d.state.knownEpoch).term;
    }
    expect(delays).toEqual([200, 400, 800, 1000, 1000, 1000]);
    // Success resets the backoff.
    d.send(promoteOk(term));
    expect(d.state).toMatchObject({ role: 'primary', attempts: 0 });
  });

  it('onDemote is never called for an onPromote that rejected', () => {
    // Plain failure.
    const d = promotingAfterSilence(() => 0.5);
    const all = [...d.send(promoteFailed(1)), ...d.advanceTo(3000)];
    expect(only(all, 'callDemote')).toEqual([]);

    // Lost the role while onPromote ran, then it rejected.
    const lost = promotingAfterShutdown();
    const fx = [...lost.send(hb('x', 9)), ...lost.send(promoteFailed(1)), ...lost.advanceTo(3000)];
    expect(only(fx, 'callDemote')).toEqual([]);

    // Shutdown while onPromote ran, then it rejected.
    const stopping = promotingAtStart();
    const fx2 = [...stopping.send({ type: 'shutdown' }), ...stopping.send(promoteFailed(1))];
    expect(only(fx2, 'callDemote')).toEqual([]);
    expect(kinds(fx2)).toEqual(['abortPromote', 'release', 'close']);
  });

  it('the disconnect its own release causes does not cut a failed promotion\'s backoff short', () => {
    // Releasing the endpoint drops this node's own SUB connection to it: that disconnect says
    // nothing new, and the retry still waits out the backoff (by silence, shutdown or at start).
    for (const [name, make] of [
      ['silence', () => promotingAfterSilence(() => 0.5)],
      ['shutdown', () => promotingAfterShutdown()],
      ['startup', () => promotingAtStart(0)],
    ] as const) {
      const d = make();
      d.advanceTo(d.now + 50);
      const failed = notes(d.send(promoteFailed(1)))[0];
      if (failed?.type !== 'promotionFailed') throw new Error(`${name}: expected promotionFailed`);
      const retryAt = d.now + failed.retryInMs;
      d.advanceTo(d.now + 5);
      expect(hasBind(d.send({ type: 'disconnected' })), name).toBe(false);
      expect(hasBind(d.advanceTo(retryAt - 1)), name).toBe(false);
      expect(hasBind(d.advanceTo(retryAt)), name).toBe(true);
    }
  });

  it('a later disconnect (a node that took over since, crashed) is news: the retry does not wait out the backoff', () => {
    const d = promotingAfterSilence(() => 0.5);
    // Three failures in a row: the backoff is 800 ms by now.
    for (let term = 1; term <= 3; term++) {
      d.advanceTo(d.now + 50);
      const failed = notes(d.send(promoteFailed(term)))[0];
      if (failed?.type !== 'promotionFailed') throw new Error('expected promotionFailed');
      if (term < 3) {
        expect(hasBind(d.advanceTo(d.now + failed.retryInMs))).toBe(true);
        claim(d, d.state.knownEpoch);
      } else {
        expect(failed.retryInMs).toBe(800);
      }
    }
    // The own release's disconnect came and went (absorbed, see above); much later, whoever
    // took over meanwhile (not heard yet) drops: try at once.
    d.advanceTo(d.now + 5);
    d.send({ type: 'disconnected' });
    const backoffEnd = d.state.nextAttemptAt ?? 0;
    d.advanceTo(d.now + 260);
    expect(d.now).toBeLessThan(backoffEnd);
    expect(hasBind(d.send({ type: 'disconnected' }))).toBe(true);
  });

  it('a claim whose state file write failed gives the endpoint back without a farewell and retries', () => {
    const d = follower();
    d.send(hb('p', 3));
    d.send(farewell('p', 3));
    d.send(BOUND);
    expect(d.send(epochLoaded(3))).toEqual([{ type: 'saveState', epoch: 4, primary: true }]);
    const fx = d.send({ type: 'stateSaved', ok: false, detail: 'EROFS' });
    // Epoch 4 was never recorded, so it must not reach the wire: no instance.promoted, no farewell.
    expect(acts(fx)).toEqual([
      { type: 'release', epoch: 4, farewellSeq: undefined },
      {
        type: 'notify',
        notification: { type: 'promotionFailed', epoch: 4, reason: 'shutdown', detail: 'state file: EROFS', retryInMs: 200 },
      },
    ]);
    expect(d.state).toMatchObject({ phase: 'secondary', holdsEndpoint: false, promoteOutstanding: false, nextAttemptAt: 200 });
    expect(hasBind(d.advanceTo(200))).toBe(true);
    expect(claim(d, 3)).toEqual({ type: 'callPromote', term: 2, epoch: 5, reason: 'shutdown' });
  });

  it('auto role: a failed onPromote at start leaves it secondary, started, and retrying', () => {
    const d = promotingAtStart(0);
    d.advanceTo(10);
    const fx = d.send(promoteFailed(1));
    expect(kinds(fx)).toEqual(['release', 'notify', 'notify', 'started']);
    expect(notes(fx)).toEqual([
      { type: 'promotionFailed', epoch: 1, reason: 'startup', detail: 'boom', retryInMs: 200 },
      { type: 'roleChanged', from: 'starting', to: 'secondary', epoch: 1, reason: 'startup' },
    ]);
    expect(d.state).toMatchObject({ role: 'secondary', phase: 'secondary', holdsEndpoint: false, nextAttemptAt: 210 });
    expect(hasBind(d.advanceTo(209))).toBe(false);
    expect(hasBind(d.advanceTo(210))).toBe(true);
    expect(claim(d, 1)).toEqual({ type: 'callPromote', term: 2, epoch: 2, reason: 'startup' });
  });
});

describe('heartbeat machine: epochs', () => {
  it('epoch is max(known, state file, own) + 1', () => {
    // The wire knows more than the state file.
    const wireAhead = follower();
    wireAhead.send(hb('p', 7));
    wireAhead.send(farewell('p', 7));
    expect(only((wireAhead.send(BOUND), wireAhead.send(epochLoaded(3))), 'saveState')).toEqual([
      { type: 'saveState', epoch: 8, primary: true },
    ]);

    // The state file knows more than the wire.
    const fileAhead = follower();
    fileAhead.send(hb('p', 2));
    fileAhead.send(farewell('p', 2));
    fileAhead.send(BOUND);
    expect(fileAhead.send(epochLoaded(10))).toEqual([{ type: 'saveState', epoch: 11, primary: true }]);
    expect(fileAhead.state).toMatchObject({ epoch: 11, knownEpoch: 11, term: 1 });

    // Its own epoch (read at boot) when the file now reads lower (e.g. unreadable: 0).
    const own = new Driver({ initialRole: 'auto' }, true, 5);
    own.send({ type: 'start' });
    own.send(BOUND);
    expect(own.send(epochLoaded(0))).toEqual([{ type: 'saveState', epoch: 6, primary: true }]);
  });

  it('a secondary\'s epoch tracks the highest seen', () => {
    const d = follower();
    d.send(hb('p', 3));
    expect(d.state).toMatchObject({ epoch: 3, knownEpoch: 3 });
    d.send(hb('q', 7));
    expect(d.state).toMatchObject({ epoch: 7, knownEpoch: 7 });
    // A lower epoch from whoever holds the endpoint now is followed, but the epoch stays.
    const fx = d.send(hb('r', 5));
    expect(d.state).toMatchObject({ epoch: 7, knownEpoch: 7 });
    expect(d.state.primary).toMatchObject({ instanceId: 'r', epoch: 5 });
    expect(fx.some((e) => e.type === 'log' && e.level === 'warn')).toBe(true);
    d.send(farewell('z', 12));
    expect(d.state).toMatchObject({ epoch: 12, knownEpoch: 12 });
  });

  it('own messages are ignored (except as the self-check)', () => {
    const d = follower();
    expect(d.send(hb('a', 9))).toEqual([]);
    expect(d.send(farewell('a', 9))).toEqual([]);
    expect(d.state).toMatchObject({ epoch: 0, knownEpoch: 0, primary: undefined, loss: undefined });
    expect(d.state.counters.heartbeatsSeen).toBe(0);

    const p = primaryAtStart(3);
    p.now = 7;
    // The first own heartbeat read back is the self-check; the subscriber then stops reading them.
    expect(p.send(hb('a', 4, 2))).toEqual([{ type: 'hearOwnHeartbeats', on: false }]);
    expect(p.state).toMatchObject({ role: 'primary', lastSelfSeenAt: 7, selfHeard: true, primary: undefined });
    // Even an own message with a higher epoch (a previous incarnation's) does not demote it.
    expect(p.send(hb('a', 99))).toEqual([]);
    expect(p.state).toMatchObject({ role: 'primary', epoch: 4, knownEpoch: 4 });
  });

  it('shutdown from an older-epoch non-followed node is ignored', () => {
    const d = follower();
    d.send(hb('p', 5));
    expect(d.send(farewell('q', 3))).toEqual([]);
    expect(d.state).toMatchObject({ loss: undefined, phase: 'secondary' });
    expect(d.state.primary?.instanceId).toBe('p');
    expect(hasBind(heartbeats(d, 'p', 5, 100, 1000))).toBe(false);

    // The followed primary's own shutdown is not ignored.
    expect(hasBind(d.send(farewell('p', 5)))).toBe(true);
  });

  it('a shutdown from a non-followed node with a newer epoch is a loss', () => {
    const d = follower();
    d.send(hb('p', 5));
    const fx = d.send(farewell('q', 6));
    expect(notes(fx)).toEqual([{ type: 'primaryLost', instanceId: 'p', epoch: 5, cause: 'shutdown', willPromote: true, reason: 'taking-over' }]);
    expect(hasBind(fx)).toBe(true);
  });
});

describe('heartbeat machine: role changes and callbacks', () => {
  it('roleChanged is announced only after onPromote resolved', () => {
    const d = promotingAtStart(3);
    expect(d.state).toMatchObject({ role: 'starting', phase: 'promoting' });
    // onPromote runs for a while; the node heartbeats meanwhile but does not claim the role.
    const meanwhile = d.advanceTo(1000);
    expect(only(meanwhile, 'publish').length).toBe(10);
    expect(notes(meanwhile)).toEqual([]);
    expect(d.state.role).toBe('starting');

    const fx = d.send(promoteOk(1));
    expect(kinds(fx)).toEqual(['notify', 'started']);
    expect(notes(fx)).toEqual([{ type: 'roleChanged', from: 'starting', to: 'primary', epoch: 4, reason: 'startup' }]);
  });

  it('a primary that sees a higher epoch steps down at once and calls onDemote', () => {
    const d = primaryAtStart(3);
    d.advanceTo(50);
    const fx = d.send(hb('x', 9));
    expect(acts(fx)).toEqual([
      { type: 'release', epoch: 4, farewellSeq: undefined },
      { type: 'notify', notification: { type: 'roleChanged', from: 'primary', to: 'secondary', epoch: 4, reason: 'higher-epoch' } },
      { type: 'callDemote', term: 1, epoch: 4, reason: 'higher-epoch' },
      { type: 'notify', notification: { type: 'primaryChanged', instanceId: 'x', epoch: 9, pid: 4242, host: 'host-1' } },
    ]);
    expect(d.state).toMatchObject({ role: 'secondary', phase: 'secondary', holdsEndpoint: false, knownEpoch: 9 });
    expect(d.state.counters.demotions).toBe(1);
    // A lower or equal epoch does not demote a primary.
    const p = primaryAtStart(3);
    expect(p.send(hb('y', 4))).toEqual([]);
    expect(p.send(hb('y', 2))).toEqual([]);
    expect(p.state.role).toBe('primary');
  });

  it('a primary that sees a higher epoch steps down, aborts onPromote and calls onDemote once after onPromote settled', () => {
    const d = promotingAfterShutdown();
    d.advanceTo(50);
    const fx = d.send(hb('x', 9));
    expect(acts(fx)).toEqual([
      { type: 'abortPromote', term: 1 },
      { type: 'release', epoch: 4, farewellSeq: undefined },
      { type: 'notify', notification: { type: 'primaryChanged', instanceId: 'x', epoch: 9, pid: 4242, host: 'host-1' } },
    ]);
    expect(d.state).toMatchObject({ holdsEndpoint: false, phase: 'secondary', role: 'secondary', promoteOutstanding: true });

    // The aborted onPromote resolves anyway: its onDemote follows, once.
    d.advanceTo(80);
    expect(acts(d.send(promoteOk(1)))).toEqual([{ type: 'callDemote', term: 1, epoch: 4, reason: 'higher-epoch' }]);
    expect(d.state).toMatchObject({ promoteOutstanding: false, promotedTerm: undefined, demoteOutstanding: true });
    expect(acts(d.send(demoteSettled(1)))).toEqual([]);
    const later = [...d.send(promoteOk(1)), ...heartbeats(d, 'x', 9, 100, 2000)];
    expect(only(later, 'callDemote')).toEqual([]);
    // It never claimed the primary role.
    expect(d.history.flatMap((h) => notes(h.effects)).some((n) => n.type === 'roleChanged' && n.to === 'primary')).toBe(false);
  });

  it('onPromote that resolves after the role was lost is paired with onDemote', () => {
    const d = follower();
    d.send(hb('p', 3));
    d.send(farewell('p', 3));
    claim(d, 3);
    const fx = [...d.send(hb('x', 5)), ...d.send(promoteOk(1)), ...d.send(demoteSettled(1))];
    expect(only(fx, 'callDemote')).toEqual([{ type: 'callDemote', term: 1, epoch: 4, reason: 'higher-epoch' }]);
    expect(notes(fx).filter((n) => n.type === 'roleChanged')).toEqual([]);
    expect(d.state.role).toBe('secondary');
  });

  it('does not compete again until an onPromote of a lost term settled and its onDemote ran', () => {
    const d = promotingAfterShutdown();
    d.advanceTo(50);
    d.send(hb('x', 9));
    // The new primary goes away while this node's aborted onPromote (term 1) still runs.
    d.advanceTo(60);
    const lost = d.send(farewell('x', 9));
    expect(notes(lost)).toMatchObject([{ type: 'primaryLost', cause: 'shutdown' }]);
    expect(hasBind(lost)).toBe(false);
    expect(hasBind(d.advanceTo(70))).toBe(false);
    expect(d.state.wakeAt).toBeGreaterThan(70);

    d.advanceTo(75);
    const settled = d.send(promoteOk(1));
    expect(kinds(settled)).toEqual(['callDemote']);
    expect(hasBind(d.advanceTo(80))).toBe(false);

    d.advanceTo(90);
    expect(kinds(d.send(demoteSettled(1)))).toEqual(['bind']);
    expect(claim(d, 9)).toEqual({ type: 'callPromote', term: 2, epoch: 10, reason: 'shutdown' });
    d.send(promoteOk(2));
    expect(d.state).toMatchObject({ role: 'primary', epoch: 10, promotedTerm: 2 });
    const callDemotes = d.history.flatMap((h) => only(h.effects, 'callDemote'));
    expect(callDemotes).toEqual([{ type: 'callDemote', term: 1, epoch: 4, reason: 'higher-epoch' }]);
  });

  it('shutdown of a primary runs onDemote before the farewell release and then closes', () => {
    const d = primaryAtStart(3);
    d.advanceTo(40);
    expect(acts(d.send({ type: 'shutdown' }))).toEqual([{ type: 'callDemote', term: 1, epoch: 4, reason: 'shutdown' }]);
    expect(d.state).toMatchObject({ role: 'primary', holdsEndpoint: true, pendingExit: 'shutdown', demoteOutstanding: true });

    // onDemote takes a while: the primary keeps heartbeating, so nobody suspects it.
    const meanwhile = d.advanceTo(250);
    expect(only(meanwhile, 'publish').map((p) => p.topic)).toEqual(['instance.heartbeat', 'instance.heartbeat']);
    // A message from another node does not disturb the exit.
    expect(acts(d.send(hb('x', 9)))).toEqual([]);

    const seq = d.state.seq;
    const fx = d.send(demoteSettled(1));
    expect(acts(fx)).toEqual([
      { type: 'release', epoch: 4, farewellSeq: seq + 1 },
      { type: 'notify', notification: { type: 'roleChanged', from: 'primary', to: 'stopped', epoch: 4, reason: 'shutdown' } },
      { type: 'close' },
    ]);
    expect(d.state).toMatchObject({ phase: 'stopping', role: 'stopped', holdsEndpoint: false });
    expect(d.state.wakeAt).toBeUndefined();

    expect(acts(d.send({ type: 'closed' }))).toEqual([]);
    expect(d.state).toMatchObject({ phase: 'stopped', role: 'stopped', pendingExit: undefined });
    expect(d.state.counters.demotions).toBe(1);
    // Nothing happens after the stop.
    expect(d.send(hb('x', 10))).toEqual([]);
    expect(d.send({ type: 'shutdown' })).toEqual([]);
  });

  it('shutdown while onPromote is running waits for it', () => {
    const d = promotingAtStart(3);
    d.advanceTo(30);
    expect(acts(d.send({ type: 'shutdown' }))).toEqual([{ type: 'abortPromote', term: 1 }]);
    expect(d.state).toMatchObject({ holdsEndpoint: true, pendingExit: 'shutdown' });
    expect(only(d.advanceTo(150), 'publish')).toHaveLength(1);

    expect(acts(d.send(promoteOk(1)))).toEqual([{ type: 'callDemote', term: 1, epoch: 4, reason: 'shutdown' }]);
    expect(d.state.role).toBe('starting');
    const fx = d.send(demoteSettled(1));
    expect(kinds(fx)).toEqual(['release', 'close']);
    expect(only(fx, 'release')[0]?.farewellSeq).toBeDefined();
    const closed = d.send({ type: 'closed' });
    expect(notes(closed)).toEqual([{ type: 'roleChanged', from: 'starting', to: 'stopped', epoch: 4, reason: 'shutdown' }]);
  });

  it('shutdown of a secondary closes at once without touching the endpoint', () => {
    const d = follower();
    d.send(hb('p', 3));
    expect(kinds(d.send({ type: 'shutdown' }))).toEqual(['close']);
    expect(notes(d.send({ type: 'closed' }))).toEqual([
      { type: 'roleChanged', from: 'secondary', to: 'stopped', epoch: 3, reason: 'shutdown' },
    ]);
  });

  it('shutdown before start closes without any socket effect', () => {
    const d = new Driver();
    expect(d.send({ type: 'shutdown' })).toEqual([{ type: 'close' }]);
    expect(d.state).toMatchObject({ phase: 'stopped', role: 'stopped' });
    expect(d.send({ type: 'start' })).toEqual([]);
  });

  it('stepDown hands over with a farewell and stays out of the next election for heartbeatTimeout', () => {
    const d = primaryAtStart(3);
    d.advanceTo(50);
    expect(acts(d.send({ type: 'stepDown' }))).toEqual([{ type: 'callDemote', term: 1, epoch: 4, reason: 'stepdown' }]);
    d.advanceTo(60);
    const seq = d.state.seq;
    const fx = d.send(demoteSettled(1));
    expect(acts(fx)).toEqual([
      { type: 'release', epoch: 4, farewellSeq: seq + 1 },
      { type: 'notify', notification: { type: 'roleChanged', from: 'primary', to: 'secondary', epoch: 4, reason: 'stepdown' } },
    ]);
    expect(d.state).toMatchObject({ role: 'secondary', phase: 'secondary', holdsEndpoint: false, holdOffUntil: 360 });

    // Out of the election: neither silence nor a disconnect makes it bind before 360.
    d.advanceTo(100);
    expect(hasBind(d.send({ type: 'disconnected' }))).toBe(false);
    expect(hasBind(d.advanceTo(359))).toBe(false);
    // Nobody took over: it takes the endpoint back.
    const back = d.advanceTo(360);
    expect(hasBind(back)).toBe(true);
    expect(claim(d, 4)).toEqual({ type: 'callPromote', term: 2, epoch: 5, reason: 'shutdown' });
  });

  it('stepDown follows the successor that took over', () => {
    const d = primaryAtStart(3);
    d.send({ type: 'stepDown' });
    d.send(demoteSettled(1));
    d.advanceTo(20);
    const fx = d.send(wire('instance.promoted', 'b', 5));
    expect(notes(fx)).toMatchObject([{ type: 'primaryChanged', instanceId: 'b', epoch: 5 }]);
    expect(hasBind(heartbeats(d, 'b', 5, 100, 2000))).toBe(false);
    expect(d.state).toMatchObject({ role: 'secondary', epoch: 5, loss: undefined });
  });

  it('stepDown while the startup onPromote runs ends the start as secondary', () => {
    const d = promotingAtStart(3);
    expect(kinds(d.send({ type: 'stepDown' }))).toEqual(['abortPromote']);
    expect(kinds(d.send(promoteOk(1)))).toEqual(['callDemote']);
    const fx = d.send(demoteSettled(1));
    expect(acts(fx)).toEqual([
      { type: 'release', epoch: 4, farewellSeq: 3 },
      { type: 'notify', notification: { type: 'roleChanged', from: 'starting', to: 'secondary', epoch: 4, reason: 'stepdown' } },
      { type: 'started' },
    ]);
    expect(d.state).toMatchObject({ role: 'secondary', phase: 'secondary', holdOffUntil: 300 });

    // The same when the aborted onPromote rejects.
    const rejected = promotingAtStart(3);
    rejected.send({ type: 'stepDown' });
    const fx2 = rejected.send(promoteFailed(1));
    expect(kinds(fx2)).toEqual(['release', 'notify', 'started']);
    expect(only(fx2, 'callDemote')).toEqual([]);
  });

  it('stepDown of a secondary does nothing', () => {
    const d = follower();
    d.send(hb('p', 3));
    expect(d.send({ type: 'stepDown' })).toEqual([]);
  });
});

describe('heartbeat machine: start', () => {
  it('auto role: takes a free endpoint at start; follows when it is in use', () => {
    const free = new Driver({ initialRole: 'auto' });
    expect(free.send({ type: 'start' })).toEqual([{ type: 'bind' }]);
    expect(free.state).toMatchObject({ phase: 'binding', role: 'starting' });
    expect(free.send(BOUND)).toEqual([{ type: 'loadEpoch' }]);
    expect(free.send(epochLoaded(0))).toEqual([{ type: 'saveState', epoch: 1, primary: true }]);
    expect(free.send(SAVED)).toEqual([
      { type: 'publish', topic: 'instance.promoted', epoch: 1, seq: 1 },
      { type: 'publish', topic: 'instance.heartbeat', epoch: 1, seq: 2, members: [] },
      { type: 'callPromote', term: 1, epoch: 1, reason: 'startup' },
    ]);
    expect(kinds(free.send(promoteOk(1)))).toEqual(['notify', 'started']);
    expect(free.state).toMatchObject({ role: 'primary', epoch: 1 });

    const taken = new Driver({ initialRole: 'auto' });
    taken.send({ type: 'start' });
    const fx = taken.send(IN_USE);
    expect(acts(fx)).toEqual([
      { type: 'notify', notification: { type: 'roleChanged', from: 'starting', to: 'secondary', epoch: 0, reason: 'startup' } },
      { type: 'started' },
    ]);
    expect(taken.state).toMatchObject({ role: 'secondary', phase: 'secondary', holdsEndpoint: false });
    const followed = taken.send(hb('p', 2));
    expect(notes(followed)).toMatchObject([{ type: 'primaryChanged', instanceId: 'p', epoch: 2 }]);
  });

  it('primary role: fails to start when the endpoint is in use', () => {
    const d = new Driver({ initialRole: 'primary' });
    expect(d.send({ type: 'start' })).toEqual([{ type: 'bind' }]);
    expect(acts(d.send(IN_USE))).toEqual([{ type: 'startFailed', reason: 'in-use', detail: 'in-use' }, { type: 'close' }]);
    expect(d.state).toMatchObject({ phase: 'stopped', role: 'stopped' });
    expect(d.send({ type: 'closed' })).toEqual([]);
  });

  it('primary role: fails to start when onPromote rejects', () => {
    const d = new Driver({ initialRole: 'primary' });
    d.send({ type: 'start' });
    claim(d, 0);
    const fx = d.send(promoteFailed(1, 'no database'));
    expect(kinds(fx)).toEqual(['release', 'notify', 'startFailed', 'close']);
    expect(only(fx, 'startFailed')).toEqual([{ type: 'startFailed', reason: 'promote-failed', detail: 'no database' }]);
  });

  it('any role: a bind that fails for another reason fails the start', () => {
    const d = new Driver({ initialRole: 'auto' });
    d.send({ type: 'start' });
    expect(acts(d.send({ type: 'bindResult', outcome: 'failed', detail: 'EACCES' }))).toEqual([
      { type: 'startFailed', reason: 'bind-failed', detail: 'EACCES' },
      { type: 'close' },
    ]);
  });

  it('secondary role: follows without touching the endpoint', () => {
    const d = new Driver({ initialRole: 'secondary' });
    expect(acts(d.send({ type: 'start' }))).toEqual([
      { type: 'notify', notification: { type: 'roleChanged', from: 'starting', to: 'secondary', epoch: 0, reason: 'startup' } },
      { type: 'started' },
    ]);
    // Its first check: one interval before the silence deadline (300 - 100).
    expect(d.state.wakeAt).toBe(200);
  });
});

describe('heartbeat machine: a primary over time', () => {
  it('heartbeats keep a steady cadence and do not catch up after a stall', () => {
    const d = primaryAtStart(3, { heartbeatTimeout: 1000 });
    // On time: 100, 200.
    d.advanceTo(250);
    // The timer fires 30 ms late: the beat goes out, the next stays on the 100 ms grid.
    d.stallUntil(330);
    d.send({ type: 'tick' });
    expect(d.state.nextHeartbeatAt).toBe(400);
    d.advanceTo(400);
    // A 450 ms stall (below heartbeatTimeout): one beat, not five, then every 100 ms from there.
    d.stallUntil(850);
    expect(only(d.send({ type: 'tick' }), 'publish')).toHaveLength(1);
    expect(d.state.nextHeartbeatAt).toBe(950);
    d.advanceTo(1150);
    const sentAt = d.history.flatMap((h) =>
      only(h.effects, 'publish').some((p) => p.topic === 'instance.heartbeat') ? [h.at] : [],
    );
    expect(sentAt).toEqual([0, 100, 200, 330, 400, 850, 950, 1050, 1150]);
    expect(d.state.counters.heartbeatsSent).toBe(9);
    expect(d.state.counters.stalls).toBe(1);
  });

  it('a primary stalled longer than heartbeatTimeout verifies the state-file epoch before heartbeating and steps down if it is higher', () => {
    const d = primaryAtStart(3);
    d.advanceTo(100);
    d.stallUntil(1000);
    const fx = d.send({ type: 'tick' });
    expect(kinds(fx)).toEqual(['loadEpoch']);
    expect(only(fx, 'publish')).toEqual([]);
    expect(d.state).toMatchObject({ phase: 'verifying', role: 'primary', holdsEndpoint: true });

    const down = d.send(epochLoaded(7));
    expect(acts(down)).toEqual([
      { type: 'release', epoch: 4, farewellSeq: undefined },
      { type: 'notify', notification: { type: 'roleChanged', from: 'primary', to: 'secondary', epoch: 4, reason: 'higher-epoch' } },
      { type: 'callDemote', term: 1, epoch: 4, reason: 'higher-epoch' },
    ]);
    expect(d.state).toMatchObject({ phase: 'secondary', role: 'secondary', holdsEndpoint: false, knownEpoch: 7 });
  });

  it('a primary stalled longer than heartbeatTimeout keeps its role when the state file holds its own epoch', () => {
    const d = primaryAtStart(3);
    d.advanceTo(100);
    d.stallUntil(1000);
    d.send({ type: 'tick' });
    const fx = d.send(epochLoaded(4));
    expect(acts(fx)).toEqual([
      { type: 'publish', topic: 'instance.heartbeat', epoch: 4, seq: expect.any(Number) as number, members: [] },
    ]);
    expect(d.state).toMatchObject({ phase: 'primary', role: 'primary', nextHeartbeatAt: 1100 });
  });
});

/**
 * A tiny synchronous cluster: effects are answered at once, messages delivered at once to every
 * other running node, one exclusive endpoint and one shared state file.
 */
class MiniCluster {
  now = 0;
  holder: string | undefined;
  fileEpoch = 0;
  readonly nodes = new Map<string, { state: MachineState; running: boolean }>();
  readonly changes: Array<{ id: string; from: string; to: string; epoch: number; reason: string }> = [];
  readonly #queue: Array<[string, Input]> = [];

  add(id: string, priority: number, initialRole: MachineConfig['initialRole'] = 'auto'): void {
    this.nodes.set(id, {
      state: initialState({ ...BASE, instanceId: id, priority, initialRole }, true, this.fileEpoch),
      running: true,
    });
    this.send(id, { type: 'start' });
  }

  send(id: string, input: Input): void {
    this.#queue.push([id, input]);
    if (this.#queue.length > 1) return;
    while (this.#queue.length > 0) {
      const [target, next] = this.#queue[0] as [string, Input];
      const node = this.nodes.get(target);
      if (node?.running) {
        const r = step(node.state, next, { now: this.now, random: () => 0.5 });
        node.state = r.state;
        for (const e of r.effects) this.#run(target, e);
      }
      this.#queue.shift();
    }
  }

  /** The holder vanishes: no farewell, the kernel frees the endpoint. */
  crash(id: string): void {
    const node = this.nodes.get(id);
    if (node === undefined) return;
    node.running = false;
    if (this.holder === id) this.holder = undefined;
  }

  advanceTo(t: number): void {
    for (;;) {
      let next: [string, number] | undefined;
      for (const [id, n] of this.nodes) {
        const at = n.state.wakeAt;
        if (n.running && at !== undefined && at <= t && (next === undefined || at < next[1])) next = [id, at];
      }
      if (next === undefined) break;
      this.now = next[1];
      this.send(next[0], { type: 'tick' });
    }
    this.now = t;
  }

  role(id: string): string | undefined {
    return this.nodes.get(id)?.state.role;
  }

  #run(id: string, e: Effect): void {
    const s = this.nodes.get(id)?.state as MachineState;
    switch (e.type) {
      case 'bind':
        if (this.holder === undefined) this.holder = id;
        this.send(id, { type: 'bindResult', outcome: this.holder === id ? 'bound' : 'in-use' });
        return;
      case 'loadEpoch':
        this.send(id, epochLoaded(this.fileEpoch));
        return;
      case 'saveState':
        this.fileEpoch = e.epoch;
        this.send(id, SAVED);
        return;
      case 'publish':
        expect(this.holder).toBe(id);
        this.#broadcast(id, wire(e.topic, id, e.epoch, e.seq));
        return;
      case 'release':
        expect(this.holder).toBe(id);
        if (e.farewellSeq !== undefined) this.#broadcast(id, farewell(id, e.epoch, e.farewellSeq));
        this.holder = undefined;
        return;
      case 'callPromote':
        this.send(id, promoteOk(e.term));
        return;
      case 'callDemote':
        this.send(id, demoteSettled(e.term));
        return;
      case 'close':
        if (this.holder === id) this.holder = undefined;
        this.send(id, { type: 'closed' });
        return;
      case 'notify':
        if (e.notification.type === 'roleChanged') {
          const { from, to, epoch, reason } = e.notification;
          this.changes.push({ id, from, to, epoch, reason });
        }
        return;
      default:
        void s;
    }
  }

  #broadcast(from: string, input: Input): void {
    for (const [id, n] of this.nodes) if (id !== from && n.running) this.send(id, input);
  }
}

describe('heartbeat machine: chains of failovers', () => {
  it('hands over through shutdown, crash, restart and stepDown with a growing epoch each time', () => {
    const c = new MiniCluster();
    c.add('a', 1);
    expect(c.role('a')).toBe('primary');
    c.add('b', 2);
    c.add('c', 3);
    expect([c.role('b'), c.role('c')]).toEqual(['secondary', 'secondary']);
    c.advanceTo(1000);
    expect(c.holder).toBe('a');

    // 1. a shuts down gracefully: a successor takes over at once, the other loses the race.
    c.send('a', { type: 'shutdown' });
    expect(c.role('a')).toBe('stopped');
    expect(c.holder).toBe('b');
    expect(c.role('b')).toBe('primary');
    expect(c.nodes.get('c')?.state.counters.lostRaces).toBe(1);
    c.advanceTo(2000);
    expect(c.nodes.get('c')?.state.primary).toMatchObject({ instanceId: 'b', epoch: 2 });

    // 2. b crashes (no farewell): c takes over after heartbeatTimeout of silence.
    c.crash('b');
    const crashedAt = c.now;
    c.advanceTo(crashedAt + 299);
    expect(c.role('c')).toBe('secondary');
    c.advanceTo(crashedAt + 300);
    expect(c.role('c')).toBe('primary');
    expect(c.nodes.get('c')?.state.epoch).toBe(3);

    // 3. a comes back (epoch from the state file) and follows c.
    c.nodes.delete('a');
    c.add('a', 1);
    expect(c.role('a')).toBe('secondary');
    c.advanceTo(c.now + 200);
    expect(c.nodes.get('a')?.state.primary).toMatchObject({ instanceId: 'c', epoch: 3 });

    // 4. c steps down: a takes over at once, c stays out.
    c.send('c', { type: 'stepDown' });
    expect(c.role('a')).toBe('primary');
    expect(c.role('c')).toBe('secondary');
    c.advanceTo(c.now + 2000);
    expect(c.holder).toBe('a');
    expect(c.nodes.get('c')?.state.primary).toMatchObject({ instanceId: 'a', epoch: 4 });

    const toPrimary = c.changes.filter((x) => x.to === 'primary').map((x) => [x.id, x.epoch, x.reason]);
    expect(toPrimary).toEqual([
      ['a', 1, 'startup'],
      ['b', 2, 'shutdown'],
      ['c', 3, 'silence'],
      ['a', 4, 'shutdown'],
    ]);
    const fromPrimary = c.changes.filter((x) => x.from === 'primary').map((x) => [x.id, x.to, x.epoch, x.reason]);
    expect(fromPrimary).toEqual([
      ['a', 'stopped', 1, 'shutdown'],
      ['c', 'secondary', 3, 'stepdown'],
    ]);
  });
});

describe('heartbeat machine: a role lost while starting', () => {
  it('a higher epoch on the wire while the startup onPromote runs ends start() as a secondary that follows the sender', () => {
    const d = promotingAtStart(0);
    const fx = d.send(hb('x', 9));
    expect(kinds(fx)).toContain('started');
    expect(kinds(fx)).toContain('abortPromote');
    expect(notes(fx)).toContainEqual({ type: 'roleChanged', from: 'starting', to: 'secondary', epoch: expect.any(Number), reason: 'higher-epoch' });
    expect(d.state).toMatchObject({ role: 'secondary', phase: 'secondary', holdsEndpoint: false, primary: { instanceId: 'x', epoch: 9 } });
    // The onPromote that was running resolves after all: its onDemote follows, nothing else.
    expect(kinds(d.send(promoteOk(1)))).toEqual(['callDemote']);
  });

  it('the same for role primary (take it or fail): start() fails, and it leaves once onPromote settled, after its onDemote', () => {
    const d = promotingAtStart(0, { initialRole: 'primary' });
    const fx = d.send(hb('x', 9));
    expect(only(fx, 'startFailed')).toEqual([{ type: 'startFailed', reason: 'in-use', detail: expect.stringMatching(/higher epoch/) }]);
    expect(kinds(fx)).not.toContain('started');
    expect(kinds(fx)).not.toContain('close');
    // Not before the onPromote under way settled, and its onDemote ran.
    expect(kinds(d.send(promoteOk(1)))).toEqual(['callDemote']);
    expect(kinds(d.send(demoteSettled(1)))).toContain('close');
    d.send({ type: 'closed' });
    expect(d.state.role).toBe('stopped');
  });
});

describe('heartbeat machine: preemption', () => {
  const present = (instanceId: string, priority: number, joined = true): Input => ({ type: 'presence', joined, instanceId, priority });

  /** A preempting primary (priority 5, epoch 1) that sees `best` (priority 1) connect. */
  function preemptingPrimary(): Driver {
    const d = promotingAtStart(0, { priority: 5, preempt: true, preemptDelay: 500 });
    d.send(promoteOk(1));
    expect(d.state.role).toBe('primary');
    d.send(present('best', 1));
    expect(d.state.preemptAt).toBe(d.now + 500);
    return d;
  }

  /** Advances to the preemption and walks the hand-over through onDemote. */
  function handOver(d: Driver): void {
    const fx = d.advanceTo(d.now + 500);
    expect(kinds(fx)).toContain('callDemote');
    expect(only(d.send(demoteSettled(1)), 'release')).toEqual([{ type: 'release', epoch: 1, farewellSeq: expect.any(Number) }]);
    expect(d.state.role).toBe('secondary');
  }

  /** Nobody took over: after its hold-off (heartbeatTimeout), this node claims the role back (term 2). */
  function retakeRole(d: Driver): void {
    expect(hasBind(d.advanceTo(d.now + 300 + 100))).toBe(true);
    claim(d, 1);
    d.send(promoteOk(2));
    expect(d.state.role).toBe('primary');
  }

  it('hands over to a better-priority secondary after preemptDelay; when it takes over, nothing is held against it', () => {
    const d = preemptingPrimary();
    handOver(d);
    // best took over: the hand-over worked, nothing is held against it.
    d.send(hb('best', 2));
    expect(d.state.preemptedFor).toBeUndefined();
    expect(d.state.preemptDeclined.size).toBe(0);
  });

  it('a secondary that did not take over when handed over to (failover disabled there) is not preempted for again while it stays connected', () => {
    const d = preemptingPrimary();
    handOver(d);
    retakeRole(d);
    expect(d.state.preemptDeclined).toEqual(new Set(['best']));
    // The new socket learns best's presence again: no second hand-over.
    d.send(present('best', 1));
    expect(d.state.preemptAt).toBeUndefined();
    const later = d.advanceTo(d.now + 2000);
    expect(kinds(later)).not.toContain('callDemote');
    expect(kinds(later)).not.toContain('release');
    expect(d.state.role).toBe('primary');
    // Once best has gone and come back, it is a candidate again.
    d.send(present('best', 1, false));
    expect(d.state.preemptDeclined.size).toBe(0);
    d.send(present('best', 1));
    expect(d.state.preemptAt).toBe(d.now + 500);
  });

  it('whoever else took over, nothing is held against anyone once this node follows another primary', () => {
    const d = preemptingPrimary();
    handOver(d);
    d.send(hb('worse', 2));
    expect(d.state.preemptedFor).toBeUndefined();
    expect(d.state.preemptDeclined.size).toBe(0);
  });

  it('a declined node is forgotten when this node follows another primary (it may have changed by the time this one leads again)', () => {
    const d = preemptingPrimary();
    handOver(d);
    retakeRole(d);
    expect(d.state.preemptDeclined).toEqual(new Set(['best']));
    // A higher epoch takes over from this node: it follows w, and lets go of what it knew.
    d.send(hb('w', 9));
    expect(d.state.role).toBe('secondary');
    expect(d.state.preemptDeclined.size).toBe(0);
  });

  it('a stepDown() under way when preemptDelay runs out is not taken for a preemption', () => {
    const d = preemptingPrimary();
    d.advanceTo(d.now + 400);
    // The application steps down; its onDemote is still running when preemptAt comes.
    expect(kinds(d.send({ type: 'stepDown' }))).toContain('callDemote');
    d.advanceTo(d.now + 200);
    expect(d.state.preemptedFor).toBeUndefined();
    d.send(demoteSettled(1));
    expect(hasBind(d.advanceTo(d.now + 400))).toBe(true);
    claim(d, 1);
    expect(d.state.preemptDeclined.size).toBe(0);
  });
});

describe('heartbeat machine: a holder stops reading its own beats', () => {
  // Once a holder's subscriber read one of its own heartbeats back on its current connection,
  // every later one goes through that same connection: the subscriber stops reading them (a
  // second delivery of each, as costly at rest as the first) until the connection changes or
  // the node gives the endpoint up, before it can reach another holder (PROTOCOL.md 2.3).
  const OFF: Effect = { type: 'hearOwnHeartbeats', on: false };
  const ON: Effect = { type: 'hearOwnHeartbeats', on: true };

  /** A primary whose subscriber read its first heartbeat back at time 5. */
  function heardPrimary(): Driver {
    const d = primaryAtStart(3);
    d.now = 5;
    expect(acts(d.send({ type: 'ownHeartbeat', seq: d.state.seq }))).toEqual([OFF]);
    return d;
  }

  it('turns its own beats off once, after the first', () => {
    const d = heardPrimary();
    expect(d.state).toMatchObject({ selfHeard: true, lastSelfSeenAt: 5 });
    // Another read back (a transport that cannot stop them) changes the time only.
    d.now = 6;
    expect(d.send({ type: 'ownHeartbeat', seq: d.state.seq })).toEqual([]);
    expect(d.send(hb('a', d.state.epoch, 9))).toEqual([]);
    expect(d.state).toMatchObject({ selfHeard: true, lastSelfSeenAt: 6 });
    // Its own farewell or promotion read back changes nothing either.
    expect(d.send(farewell('a', d.state.epoch))).toEqual([]);
  });

  it('reads them again when its connection changes', () => {
    for (const event of ['connected', 'disconnected'] as const) {
      const d = heardPrimary();
      expect(acts(d.send({ type: event }))).toEqual([ON]);
      expect(d.state).toMatchObject({ role: 'primary', selfHeard: false });
      // A second event before the next heartbeat asks for nothing more.
      expect(acts(d.send({ type: event }))).toEqual([]);
      // A heartbeat sent before the event, still queued from the old connection, proves nothing
      // of the new one (which may reach another holder): it stays on.
      const before = d.state.seq;
      expect(acts(d.send({ type: 'ownHeartbeat', seq: before }))).toEqual([]);
      expect(acts(d.send(hb('a', d.state.epoch, before)))).toEqual([]);
      expect(d.state.selfHeard).toBe(false);
      // The next one sent, read back on the new connection, turns them off again.
      d.advanceTo(100);
      expect(d.state.seq).toBe(before + 1);
      expect(acts(d.send({ type: 'ownHeartbeat', seq: d.state.seq }))).toEqual([OFF]);
    }
  });

  it('keeps them on with a transport that cannot stop them', () => {
    // quietsOwnHeartbeats false (a transport without hearOwnHeartbeats): every own heartbeat
    // keeps coming back, and health reads the age of the last one.
    const d = primaryAtStart(3, { quietsOwnHeartbeats: false });
    d.advanceTo(250);
    // Each one takes the shortcut, which agrees with the full step.
    const own: Input = { type: 'ownHeartbeat', seq: d.state.seq };
    expect(step(d.state, own, { now: d.now, random: () => 0.5 })).toEqual(fullStep(d.state, own, { now: d.now, random: () => 0.5 }));
    expect(d.send(own)).toEqual([]);
    expect(d.state.selfHeard).toBe(false);
    d.advanceTo(1000);
    expect(ownHeartbeatSeenAt(d.state)).toBe(250);
  });

  it('a secondary never turns them off', () => {
    const d = follower();
    d.send(hb('p', 3));
    expect(acts(d.send({ type: 'connected' }))).toEqual([]);
    expect(d.send({ type: 'ownHeartbeat', seq: d.state.seq })).toEqual([]);
    expect(only(d.send(hb('a', 3)), 'hearOwnHeartbeats')).toEqual([]);
    expect(d.state.selfHeard).toBe(false);
  });

  it('reads them again as it gives the endpoint up', () => {
    // Step-down and shutdown: after the release or close that ends the
    // connection, so nothing of another holder can arrive while it does not read them.
    const cases: Array<[string, (d: Driver) => Effect[]]> = [
      ['stepDown', (d) => [...d.send({ type: 'stepDown' }), ...d.send(demoteSettled(1))]],
      ['shutdown', (d) => [...d.send({ type: 'shutdown' }), ...d.send(demoteSettled(1))]],
    ];
    for (const [name, leave] of cases) {
      const d = heardPrimary();
      const fx = acts(leave(d));
      expect(d.state.holdsEndpoint, name).toBe(false);
      expect(d.state.selfHeard, name).toBe(false);
      const on = fx.findIndex((e) => e.type === 'hearOwnHeartbeats');
      expect(fx.filter((e) => e.type === 'hearOwnHeartbeats'), name).toEqual([ON]);
      const gone = fx.findIndex((e) => e.type === 'release' || e.type === 'close');
      expect(gone, name).toBeGreaterThanOrEqual(0);
      expect(on, name).toBeGreaterThan(gone);
    }
    // A higher epoch can only arrive on a new connection, whose event turned them on already.
    const d = heardPrimary();
    expect(acts(d.send({ type: 'connected' }))).toEqual([ON]);
    const fx = d.send(hb('z', 9));
    expect(d.state).toMatchObject({ holdsEndpoint: false, selfHeard: false, role: 'secondary' });
    expect(only(fx, 'hearOwnHeartbeats')).toEqual([]);
  });

  it('counts beats sent on a proven connection as heard', () => {
    const d = heardPrimary();
    d.advanceTo(1000);
    // Sent since, on the connection that carried one back: the freshest is the last sent.
    expect(d.state.lastSentAt).toBeGreaterThan(900);
    expect(ownHeartbeatSeenAt(d.state)).toBe(d.state.lastSentAt);
    // Once the connection changed, only a heartbeat read back counts: the age goes on from the
    // last one sent on the proven connection, not from the first read back long ago.
    const last = d.state.lastSentAt;
    d.send({ type: 'disconnected' });
    expect(ownHeartbeatSeenAt(d.state)).toBe(last);
    d.advanceTo(1100);
    expect(ownHeartbeatSeenAt(d.state)).toBe(last);
    d.now = 1101;
    d.send({ type: 'ownHeartbeat', seq: d.state.seq });
    expect(ownHeartbeatSeenAt(d.state)).toBe(1101);
    // A secondary has none.
    expect(ownHeartbeatSeenAt(follower().state)).toBeUndefined();
  });
});

describe('heartbeat machine: the shortcut for heartbeats at rest', () => {
  it('a primary reading its own beats agrees with the full step', () => {
    // step() takes a shortcut for a holder's own heartbeat read back through the endpoint (the
    // secondaries' shortcut is compared on every message of the property tests). Compared here
    // in each phase a holder passes through, on time and late (a wakeAt already due).
    const d = primaryAtStart(3, { preempt: true });
    let compared = 0;
    let comparedHeard = 0;
    for (let i = 0; i < 40; i++) {
      d.advanceTo(d.now + (i % 7 === 0 ? 0 : 37));
      if (i === 20) d.send({ type: 'presence', joined: true, instanceId: 'b', priority: 0 });
      if (i === 30) d.send({ type: 'stepDown' });
      const now = d.now + (i % 5 === 0 ? 250 : 0);
      const input = hb('a', d.state.epoch, d.state.seq);
      const fast = step(d.state, input, { now, random: () => 0.5 });
      const full = fullStep(d.state, input, { now, random: () => 0.5 });
      expect(fast).toEqual(full);
      // The driver recognises its own last heartbeat by its bytes and feeds `ownHeartbeat`.
      expect(step(d.state, { type: 'ownHeartbeat', seq: d.state.seq }, { now, random: () => 0.5 })).toEqual(full);
      expect(fullStep(d.state, { type: 'ownHeartbeat', seq: d.state.seq }, { now, random: () => 0.5 })).toEqual(full);
      if (d.state.holdsEndpoint) {
        compared++;
        if (d.state.selfHeard) comparedHeard++;
      }
      // Half the time the subscriber has read one back on this connection (the shortcut's case),
      // half the time not (a connection change makes it read them again).
      if (i % 4 === 1) d.send({ type: 'ownHeartbeat', seq: d.state.seq });
      if (i % 4 === 3) d.send({ type: i % 8 === 3 ? 'connected' : 'disconnected' });
    }
    expect(compared).toBeGreaterThan(20);
    expect(comparedHeard).toBeGreaterThan(5);
    expect(compared - comparedHeard).toBeGreaterThan(5);
    expect(d.state.config.instanceId).toBe('a');
  });

  it("a primary's tick agrees with the full step", () => {
    // step() takes a shortcut for a primary's tick at rest (steadyTick). Compared at every
    // wake-up and heartbeat instant, on time and late, through what a primary's tick may meet
    // besides a heartbeat: a stall, a welcome due, a preemption due, a stolen socket file, a
    // step-down; and, with a stall threshold above heartbeatTimeout, a stall it must verify.
    for (const overrides of [{ preempt: true }, { preempt: true, stallThreshold: 5 * BASE.heartbeatTimeout }]) {
      const d = primaryAtStart(3, overrides);
      const compare = (now: number): boolean => {
        const input: Input = { type: 'tick' };
        const env = { now, random: () => 0.5 };
        expect(step(d.state, input, env)).toEqual(fullStep(d.state, input, env));
        return d.state.phase === 'primary';
      };
      let compared = 0;
      for (let i = 0; i < 60; i++) {
        const at = d.state.wakeAt ?? d.now + 10;
        const beat = d.state.nextHeartbeatAt ?? at;
        // Early (a tick before the heartbeat is due: another timer's, or the rehearsal's), on
        // time, late, stalled, stalled past heartbeatTimeout.
        const times = [d.now, beat - 1, at, at + 7, at + BASE.stallThreshold + 1, at + BASE.heartbeatTimeout + 1, beat, beat + 1];
        for (const t of times) {
          if (t >= d.now && compare(t)) compared++;
        }
        if (i === 10 || i === 12) {
          // Two new subscribers at once, just before a heartbeat: the second one's welcome is
          // due 10 ms later, and the heartbeat serves it.
          d.advanceTo(Math.max(d.now, beat - 5));
          d.send({ type: 'subscribed' });
          d.send({ type: 'subscribed' });
          expect(d.state.welcomeDueAt).toBeDefined();
          if (compare(beat)) compared++;
        }
        if (i === 20) d.send({ type: 'presence', joined: true, instanceId: 'b', priority: 0 });
        if (i === 30) d.send({ type: 'presence', joined: true, instanceId: 'z', priority: 9 }); // a better node: preemption
        if (i === 40) d.send({ type: 'endpointStolen', found: 'replaced', detail: 'another socket (inode 7)' });
        if (i === 50) d.send({ type: 'stepDown' }); // then the ticks of a node giving the endpoint up
        d.advanceTo(Math.max(at, d.now));
      }
      expect(compared).toBeGreaterThan(150);
    }
  });

  it('the tick shortcut agrees on arbitrary states', () => {
    // The same comparison on states no run may reach: a primary's state with the fields the
    // shortcut reads set at random (phase, holder, due times, a stall, a welcome or preemption
    // due, a stolen file). Whatever the shortcut decides must be what the full step decides.
    const base = primaryAtStart(3, { preempt: true }).state;
    // Weighted towards a primary at rest, so that the shortcut's own path is taken often.
    const t = fc.integer({ min: 0, max: 3 * BASE.heartbeatTimeout });
    const often = <T,>(usual: T, other: fc.Arbitrary<T>): fc.Arbitrary<T> =>
      fc.oneof({ arbitrary: fc.constant(usual), weight: 3 }, { arbitrary: other, weight: 1 });
    const phases = ['idle', 'binding', 'secondary', 'acquiring', 'claiming', 'promoting', 'primary', 'verifying', 'stopping', 'stopped'] as const;
    fc.assert(
      fc.property(
        fc.record({
          phase: often<MachineState['phase']>('primary', fc.constantFrom(...phases)),
          holdsEndpoint: often(true, fc.boolean()),
          nextHeartbeatAt: fc.option(t, { nil: undefined }),
          wakeAt: fc.option(t, { nil: undefined }),
          lastSentAt: fc.option(t, { nil: undefined }),
          welcomeDueAt: often<number | undefined>(undefined, t),
          preemptAt: often<number | undefined>(undefined, t),
          stolen: often(false, fc.boolean()),
          now: t,
        }),
        (r) => {
          const state: MachineState = {
            ...base,
            phase: r.phase,
            holdsEndpoint: r.holdsEndpoint,
            nextHeartbeatAt: r.nextHeartbeatAt,
            wakeAt: r.wakeAt,
            lastSentAt: r.lastSentAt,
            welcomeDueAt: r.welcomeDueAt,
            preemptAt: r.preemptAt,
            endpointStolen: r.stolen ? { found: 'replaced', detail: 'another socket (inode 7)', since: 0 } : undefined,
          };
          const env = { now: r.now, random: () => 0.5 };
          expect(step(state, { type: 'tick' }, env)).toEqual(fullStep(state, { type: 'tick' }, env));
        },
      ),
      { seed: 17, numRuns: 3000 },
    );
  });
});
