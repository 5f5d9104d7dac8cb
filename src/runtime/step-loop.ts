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
  /**
   * Wall-clock time at which the last step began: while its effects run, the moment they were
   * decided. Notifications are stamped with it, not with the time they are run at: effects
   * before them (a release closing a socket) may hold the thread, on a busy host for
   * milliseconds, and a primary's end stamped after its release could fall after a successor's
   * start.
   */
  decidedAt = 0;
  readonly #o: StepLoopOptions<S, I, E>;
  #queue: I[] = [];
  #idle: Array<() => void> = [];
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
        this.decidedAt = this.#o.clock.wallNow();
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
    // Work deferred by effects runs once the loop is idle, in this same tick: what it feeds in
    // (stepDown, shutdown, ...) is handled at once, as from any other caller.
    for (let fn = this.#idle.shift(); fn !== undefined; fn = this.#idle.shift()) fn();
  }

  /**
   * Runs `fn` as soon as the loop is idle: at the end of the dispatch under way (same tick), or
   * at once when none is. For calls into application code that may call back into the loop.
   */
  whenIdle(fn: () => void): void {
    if (!this.#dispatching) {
      fn();
      return;
    }
    this.#idle.push(fn);
  }

  /** Disarms the timer; later inputs and deferred work are dropped. */
  stop(): void {
    this.#stopped = true;
    this.#queue = [];
    this.#idle = [];
    this.#reschedule();
  }

  /**
   * Keeps one timer armed no later than the machine's `wakeAt`. A `wakeAt` that moves later (a
   * secondary's silence deadline moves with every heartbeat) keeps the armed timer: when it
   * fires before the new instant, it is armed again for the rest, with no input. So a message
   * costs no timer of its own, and the machine still sees its tick at `wakeAt`, never before.
   */
  #reschedule(): void {
    const at = this.#stopped ? undefined : this.state.wakeAt;
    if (at === this.#timerAt) return;
    if (at !== undefined && this.#timer !== undefined && this.#timerAt !== undefined && this.#timerAt < at) return;
    if (this.#timer !== undefined) this.#o.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === undefined) return;
    this.#timer = this.#o.clock.setTimer(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      const due = this.state.wakeAt;
      if (due !== undefined && this.#o.clock.now() < due) this.#reschedule();
      else this.dispatch(this.#o.tick);
    }, at - this.#o.clock.now());
  }
}
