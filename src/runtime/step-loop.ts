/**
 * The loop that drives a pure state machine: feeds it one input at a time (inputs that arrive
 * while effects run are queued, never re-entered), runs the effects it returns, and keeps one
 * timer armed for the machine's `wakeAt`, which comes back as the `tick` input.
 *
 * @module
 */
import type { StepEnv } from '../core/step-builder.js';
import type { Clock, TimerHandle } from './clock.js';

export interface StepLoopOptions<S, I, E> {
  readonly initial: S;
  readonly step: (state: S, input: I, env: StepEnv) => {
    readonly state: S;
    readonly effects: readonly E[];
  };
  readonly clock: Clock;
  readonly random: () => number;
  /** Runs one effect; must not throw. */
  readonly run: (effect: E) => void;
  /** Called after an input's effects ran. */
  readonly after?: (input: I) => void;
  /** The input fed when the timer fires. */
  readonly tick: I;
}

export class StepLoop<S extends { readonly wakeAt: number | undefined }, I, E> {
  /** The machine's current state. Writable only before the first input. */
  state: S;
  readonly #o: StepLoopOptions<S, I, E>;
  #queue: I[] = [];
  #dispatching = false;
  #timer: TimerHandle | undefined;
  #timerAt: number | undefined;
  #stopped = false;

  constructor(options: StepLoopOptions<S, I, E>) {
    this.#o = options;
    this.state = options.initial;
  }

  /** Feeds an input (now, or after the one being handled). Ignored once stopped. */
  dispatch(input: I): void {
    if (this.#stopped) return;
    this.#queue.push(input);
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
        const { state, effects } = this.#o.step(this.state, next, { now: this.#o.clock.now(), random: this.#o.random });
        this.state = state;
        for (const effect of effects) this.#o.run(effect);
        this.#o.after?.(next);
        if (this.#stopped) break;
      }
    } finally {
      this.#dispatching = false;
    }
    this.#reschedule();
  }

  /** Disarms the timer; later inputs are ignored. */
  stop(): void {
    this.#stopped = true;
    this.#queue = [];
    this.#reschedule();
  }

  #reschedule(): void {
    const at = this.#stopped ? undefined : this.state.wakeAt;
    if (at === this.#timerAt) return;
    if (this.#timer !== undefined) this.#o.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === undefined) return;
    this.#timer = this.#o.clock.setTimer(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.dispatch(this.#o.tick);
    }, at - this.#o.clock.now());
  }
}
