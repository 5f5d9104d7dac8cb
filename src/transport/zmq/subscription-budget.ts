/**
 * How fast the primary takes in what its subscribers send up (subscriptions and
 * unsubscriptions): a token bucket on the local monotonic clock, pure (the caller passes the time
 * and does the waiting).
 *
 * Why: libzmq keeps every distinct topic a connection subscribes until that connection closes,
 * and takes a connection's subscriptions in as fast as the socket is read; the application can
 * neither tell which connection sent one nor close a single connection of a bound socket. So
 * the one thing that bounds how fast a flooding peer grows the primary's memory (and how much of
 * its CPU it takes) is how fast the primary reads. Reading pauses when the budget is spent;
 * meanwhile libzmq holds at most a few subscriptions per connection (the XPUB's receive
 * high-water mark) and the rest of a flood waits in the sender's and the kernel's socket
 * buffers. A legitimate cluster never comes near the budget: every node sends two or three
 * subscriptions per connection (PROTOCOL.md section 5), so even a 1024-node cluster
 * reconnecting after a takeover fits in the burst.
 *
 * @module
 */

/** Subscriptions taken in at once after a quiet period. */
export const SUBSCRIPTION_BURST = 4096;

/** Subscriptions taken in per second once the burst is spent. */
export const SUBSCRIPTION_RATE = 1000;

export class SubscriptionBudget {
  readonly #burst: number;
  readonly #perMs: number;
  #tokens: number;
  #at: number;

  constructor(now: number, burst = SUBSCRIPTION_BURST, perSecond = SUBSCRIPTION_RATE) {
    this.#burst = burst;
    this.#perMs = perSecond / 1000;
    this.#tokens = burst;
    this.#at = now;
  }

  /**
   * Takes one subscription's worth at `now` (monotonic ms): 0 when it may be read at once, or
   * how many ms to wait before reading it (then call again).
   */
  take(now: number): number {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs);
      this.#at = now;
    }
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#perMs));
  }
}
