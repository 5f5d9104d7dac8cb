/**
 * What every election backend's driver does alike, whatever keeps the role underneath: call the
 * application's `onPromote`/`onDemote` and report how they settled, hold one abort signal per
 * term, and deliver notifications after the step that decided them. Each backend keeps only its
 * own effects (lease operations, sockets, locks) and decides *when* to call; these helpers decide
 * nothing.
 *
 * Guarantees:
 * - {@link callSettled} calls the callback synchronously, where the driver chose to (a takeover
 *   pays no extra turn), and reports exactly once: a synchronous throw, a rejection and a
 *   resolution are all one `settled(error | undefined)`; it never throws itself;
 * - {@link TermSignals} aborts each term's signal at most once, with the reason given;
 * - {@link Deliveries} runs what was queued in order, after the current step (one `setImmediate`
 *   per batch), never inside it, so a listener cannot block or re-enter the machine.
 *
 * @module
 */

/**
 * Calls `fn(arg)` and reports how it settled: `settled(undefined)` once it returned or resolved,
 * `settled(error)` once it threw or rejected (an `Error` naming `what` when it rejected with
 * nothing). No callback: settles as resolved, on a microtask like a resolved promise would.
 */
export function callSettled<A>(fn: ((arg: A) => unknown) | undefined, arg: A, what: string, settled: (error: unknown) => void): void {
  let result: unknown;
  try {
    result = fn?.(arg);
  } catch (error) {
    settled(error ?? new Error(`${what} threw`));
    return;
  }
  Promise.resolve(result).then(
    () => settled(undefined),
    (error: unknown) => settled(error ?? new Error(`${what} rejected`)),
  );
}

/** One abort controller per term: the signal handed to `onPromote`. */
export class TermSignals {
  readonly #controllers = new Map<number, AbortController>();

  /** A fresh signal for `term`. */
  open(term: number): AbortSignal {
    const controller = new AbortController();
    this.#controllers.set(term, controller);
    return controller.signal;
  }

  /** Aborts `term`'s signal with `reason` (once) and forgets it. */
  abort(term: number, reason: unknown): void {
    this.#controllers.get(term)?.abort(reason);
    this.#controllers.delete(term);
  }

  /** Aborts every open signal (the term ended, or the election was disposed of). */
  abortAll(reason?: unknown): void {
    for (const controller of this.#controllers.values()) controller.abort(reason);
    this.#controllers.clear();
  }
}

/** Notifications delivered in order after the current step, in one `setImmediate` per batch. */
export class Deliveries {
  #pending: Array<() => void> = [];
  #scheduled = false;

  push(deliver: () => void): void {
    this.#pending.push(deliver);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const batch = this.#pending;
      this.#pending = [];
      for (const d of batch) d();
    });
  }
}
