/**
 * Time as a dependency. Decisions use `now()` (local monotonic ms); `wallNow()` (ms since the
 * Unix epoch, sub-millisecond precision) only stamps events and status for people to read.
 *
 * @module
 */

/** An opaque timer handle. */
export type TimerHandle = { readonly __timer: unique symbol } | object;

/** The clock a watcher runs on. */
export interface Clock {
  /** Monotonic milliseconds; only differences are meaningful. */
  now(): number;
  /** Milliseconds since the Unix epoch (for display and event stamps). */
  wallNow(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** Timers of at least this many ms are rounded up so they never fire early (see systemClock). */
const EARLY_FIRE_GUARD_FROM = 10;

/** The real clock: `performance.now()` and Node timers (unref'd: timers never keep a process alive). */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => performance.timeOrigin + performance.now(),
  setTimer(fn, ms) {
    // Node counts a timeout from the event loop's cached time, in whole milliseconds, which lags
    // the real time by up to a millisecond or so: a 99.6 ms timeout then fires a little before
    // its instant, the machine finds nothing due and asks for a second wake-up 1 ms later (two
    // wake-ups per heartbeat at rest). Rounded up and one more millisecond, it fires once, after
    // its instant. Not the short timers (a lost bind's 1 ms retry): a takeover pays nothing.
    const t = setTimeout(fn, ms >= EARLY_FIRE_GUARD_FROM ? Math.ceil(ms) + 1 : Math.max(0, ms));
    t.unref();
    return t;
  },
  clearTimer(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

interface FakeTimer {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/**
 * A clock that moves only when told to, for tests: `advance(ms)` runs every timer that falls due,
 * in order, each at its own time.
 *
 * @example
 * const clock = new FakeClock();
 * clock.setTimer(() => console.log('fired'), 1000);
 * clock.advance(1000); // prints "fired"
 */
export class FakeClock implements Clock {
  #now: number;
  #wallOffset: number;
  #timers: FakeTimer[] = [];
  #nextId = 1;

  constructor(start = 0, wallStart = 1_700_000_000_000) {
    this.#now = start;
    this.#wallOffset = wallStart - start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#now + this.#wallOffset;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer: FakeTimer = { id: this.#nextId++, at: this.#now + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t !== handle);
  }

  /** Number of pending timers. */
  get pending(): number {
    return this.#timers.length;
  }

  /** When the earliest pending timer falls due, or undefined when none is pending. */
  get nextAt(): number | undefined {
    let at: number | undefined;
    for (const t of this.#timers) if (at === undefined || t.at < at) at = t.at;
    return at;
  }

  /**
   * Runs the one earliest timer due by `until` (ties in the order they were set), moving time to
   * it; false when none is due by then. For drivers that let other work run between two timers.
   */
  runNext(until: number = this.#now): boolean {
    const due = this.#timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
    if (due === undefined) return false;
    this.#timers = this.#timers.filter((t) => t !== due);
    this.#now = Math.max(this.#now, due.at);
    due.fn();
    return true;
  }

  /** Moves time forward by `ms`, running due timers in time order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const due = this.#timers
        .filter((t) => t.at <= target)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = target;
  }
}
