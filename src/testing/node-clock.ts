/**
 * One node's view of a test cluster's clock: the cluster's `FakeClock` as one process sees it.
 *
 * Time is the cluster's for every node (monotonic time goes on while a process is stopped), but
 * what runs in the node's process can be held back:
 * - while the node is stalled (its event loop frozen), its timers and the messages and events
 *   that reach it are held; when it wakes they run, each on a turn of its own, the timers first
 *   and then what arrived (Node runs expired timers before it polls for I/O), late, at the time
 *   it woke;
 * - once the node has crashed, nothing of it runs any more.
 *
 * @module
 */
import type { Clock, FakeClock, TimerHandle } from '../runtime/clock.js';

interface Entry {
  readonly fn: () => void;
  readonly arrival: boolean;
  base: TimerHandle | undefined;
  cleared: boolean;
}

export class NodeClock implements Clock {
  readonly #base: FakeClock;
  #dead = false;
  #frozen = false;
  #heldTimers: Entry[] = [];
  #heldArrivals: Entry[] = [];
  /** Entries waiting on the cluster's clock. */
  readonly #scheduled = new Set<Entry>();

  constructor(base: FakeClock) {
    this.#base = base;
  }

  now(): number {
    return this.#base.now();
  }

  wallNow(): number {
    return this.#base.wallNow();
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    return this.#schedule(fn, ms, false);
  }

  clearTimer(handle: TimerHandle): void {
    const entry = handle as Entry;
    entry.cleared = true;
    this.#unschedule(entry);
  }

  /** Runs `fn` (a message or event reaching this node) `ms` from now, or later if the node is stalled then. */
  arrive(fn: () => void, ms: number): void {
    this.#schedule(fn, ms, true);
  }

  get frozen(): boolean {
    return this.#frozen;
  }

  get dead(): boolean {
    return this.#dead;
  }

  /** The event loop freezes: what falls due from now on waits for {@link thaw}. */
  freeze(): void {
    if (!this.#dead) this.#frozen = true;
  }

  /** The event loop runs again: what was held runs now, timers first, each on a turn of its own. */
  thaw(): void {
    if (!this.#frozen) return;
    this.#frozen = false;
    const held = [...this.#heldTimers, ...this.#heldArrivals];
    this.#heldTimers = [];
    this.#heldArrivals = [];
    for (const entry of held) {
      if (entry.cleared) continue;
      entry.base = this.#base.setTimer(() => this.#fire(entry), 0);
      this.#scheduled.add(entry);
    }
  }

  /** The process is gone: nothing of it runs any more. */
  kill(): void {
    this.#dead = true;
    this.#frozen = false;
    for (const entry of [...this.#heldTimers, ...this.#heldArrivals, ...this.#scheduled]) {
      entry.cleared = true;
      this.#unschedule(entry);
    }
    this.#heldTimers = [];
    this.#heldArrivals = [];
  }

  #schedule(fn: () => void, ms: number, arrival: boolean): Entry {
    const entry: Entry = { fn, arrival, base: undefined, cleared: this.#dead };
    if (!this.#dead) {
      entry.base = this.#base.setTimer(() => this.#fire(entry), ms);
      this.#scheduled.add(entry);
    }
    return entry;
  }

  #unschedule(entry: Entry): void {
    if (entry.base !== undefined) this.#base.clearTimer(entry.base);
    entry.base = undefined;
    this.#scheduled.delete(entry);
  }

  #fire(entry: Entry): void {
    entry.base = undefined;
    this.#scheduled.delete(entry);
    if (entry.cleared || this.#dead) return;
    if (this.#frozen) {
      (entry.arrival ? this.#heldArrivals : this.#heldTimers).push(entry);
      return;
    }
    entry.fn();
  }
}
