/**
 * The accumulator both pure state machines use inside one step: the next state, patched
 * immutably, and the effects in the order they are asked for. No I/O, no clock: `now` and
 * `random` come from the step's environment.
 *
 * @module
 */

/** Time and randomness for one step of any machine. */
export interface StepEnv {
  /** Local monotonic time, ms. */
  readonly now: number;
  /** A uniform random number in [0, 1). */
  readonly random: () => number;
}

/** A log effect, common to every machine. */
export interface LogEffect {
  readonly type: 'log';
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
}

export class StepBuilder<S extends { readonly counters: object }, E extends { readonly type: string }> {
  s: S;
  readonly effects: E[] = [];
  readonly now: number;
  readonly random: () => number;

  constructor(state: S, env: StepEnv) {
    this.s = state;
    this.now = env.now;
    this.random = env.random;
  }

  set(patch: Partial<S>): void {
    this.s = { ...this.s, ...patch };
  }

  count(name: keyof S['counters'] & string, by = 1): void {
    const counters = this.s.counters as unknown as Record<string, number>;
    this.s = { ...this.s, counters: { ...counters, [name]: (counters[name] ?? 0) + by } };
  }

  emit(effect: E): void {
    this.effects.push(effect);
  }

  log(level: LogEffect['level'], message: string): void {
    this.effects.push({ type: 'log', level, message } as unknown as E);
  }
}
