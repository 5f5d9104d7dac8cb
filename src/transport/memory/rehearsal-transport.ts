/**
 * A transport with no socket behind it, for a watcher's dry runs of a takeover (the `rehearsals`
 * option): every bind succeeds, sends go nowhere, and the watcher running the rehearsal plays
 * the primary by handing messages and events to the scratch watcher directly.
 *
 * @module
 */
import type { BindOutcome, Frames, Transport, TransportHandlers } from '../transport.js';

export class RehearsalTransport implements Transport {
  #handlers: TransportHandlers | undefined;

  async open(handlers: TransportHandlers): Promise<void> {
    this.#handlers = handlers;
  }

  probe(): void {}

  async bind(): Promise<BindOutcome> {
    return { outcome: 'bound' };
  }

  async publish(): Promise<void> {}

  async release(): Promise<void> {}

  async close(): Promise<void> {
    this.#handlers = undefined;
  }

  /** Hands `frames` to the watcher as if they had arrived on the endpoint. */
  deliver(frames: Frames): void {
    this.#handlers?.onMessage([frames[0], frames[1]]);
  }

  /** Reports the connection to the endpoint's holder as dropped. */
  disconnect(): void {
    this.#handlers?.onEvent({ type: 'disconnected' });
  }
}
