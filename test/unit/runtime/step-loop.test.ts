/**
 * The step loop's timer on a fake clock: one timer armed no later than the machine's wakeAt,
 * never a tick before it.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock, type Clock, type TimerHandle } from '../../../src/runtime/clock.js';
import { StepLoop } from '../../../src/runtime/step-loop.js';

type State = { readonly wakeAt: number | undefined; readonly ticks: number[] };
type Input = { readonly type: 'tick' } | { readonly type: 'wakeAt'; readonly at: number | undefined };

/** A fake clock that counts the timers armed and cleared. */
function countingClock(): { clock: Clock; fake: FakeClock; armed: () => number; cleared: () => number } {
  const fake = new FakeClock();
  let armed = 0;
  let cleared = 0;
  const clock: Clock = {
    now: () => fake.now(),
    wallNow: () => fake.wallNow(),
    setTimer: (fn: () => void, ms: number): TimerHandle => {
      armed++;
      return fake.setTimer(fn, ms);
    },
    clearTimer: (h: TimerHandle) => {
      cleared++;
      fake.clearTimer(h);
    },
  };
  return { clock, fake, armed: () => armed, cleared: () => cleared };
}

function loop(clock: Clock): StepLoop<State, Input, never> {
  return new StepLoop<State, Input, never>({
    initial: { wakeAt: undefined, ticks: [] },
    step: (s, input, env) => ({
      state: input.type === 'tick' ? { wakeAt: undefined, ticks: [...s.ticks, env.now] } : { ...s, wakeAt: input.at },
      effects: [],
    }),
    clock,
    random: () => 0.5,
    run: () => {},
    tick: { type: 'tick' },
  });
}

describe('StepLoop timer', () => {
  it('keeps its timer when wakeAt moves later', () => {
    // A secondary's silence deadline moves later with every heartbeat: no timer per message.
    const { clock, fake, armed, cleared } = countingClock();
    const l = loop(clock);
    for (let i = 0; i < 50; i++) {
      l.dispatch({ type: 'wakeAt', at: fake.now() + 500 });
      fake.advance(100);
    }
    // One timer per 400 ms (fired at its instant, re-armed for the rest), not one per message.
    expect(armed()).toBeLessThanOrEqual(14);
    expect(cleared()).toBe(0);
    expect(l.state.ticks).toEqual([]);
    // Heard no more: the tick comes at the last wakeAt, not before.
    const last = l.state.wakeAt as number;
    fake.advance(last - fake.now() - 1);
    expect(l.state.ticks).toEqual([]);
    fake.advance(1);
    expect(l.state.ticks).toEqual([last]);
  });

  it('re-arms at once when wakeAt moves earlier', () => {
    const { clock, fake } = countingClock();
    const l = loop(clock);
    l.dispatch({ type: 'wakeAt', at: 1000 });
    l.dispatch({ type: 'wakeAt', at: 200 });
    fake.advance(200);
    expect(l.state.ticks).toEqual([200]);
  });

  it('disarms when wakeAt is cleared or the loop stops', () => {
    const { clock, fake } = countingClock();
    const l = loop(clock);
    l.dispatch({ type: 'wakeAt', at: 300 });
    l.dispatch({ type: 'wakeAt', at: undefined });
    expect(fake.pending).toBe(0);
    l.dispatch({ type: 'wakeAt', at: 300 });
    l.dispatch({ type: 'wakeAt', at: 600 });
    l.stop();
    expect(fake.pending).toBe(0);
    fake.advance(1000);
    expect(l.state.ticks).toEqual([]);
  });
});
