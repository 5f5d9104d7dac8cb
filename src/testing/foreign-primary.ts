/**
 * A foreign primary on a test cluster's endpoint: a process that is not one of the cluster's
 * watchers but speaks the protocol (docs/PROTOCOL.md) and holds the endpoint with an epoch of its
 * choosing. A peer of another implementation, a node restored from an old backup, or a process
 * that ignored the path lock (a stolen filesystem socket): how a higher epoch reaches a primary.
 *
 * It takes the endpoint at once (from its holder, if there is one), announces itself
 * (`instance.promoted`), heartbeats every `heartbeatInterval` and greets each subscriber that
 * connects; it ignores whatever it hears. {@link ForeignPrimary.leave} gives the endpoint up,
 * with a farewell or as a crash.
 *
 * @module
 */
import { hostname } from 'node:os';
import { encode } from '../protocol/codec.js';
import { PROTOCOL_VERSION, type Topic } from '../protocol/messages.js';
import type { FakeClock, TimerHandle } from '../runtime/clock.js';
import type { Frames } from '../transport/transport.js';
import type { Holder, MemoryEndpoint } from './memory-endpoint.js';

/** What {@link TestCluster.injectPrimary} takes. */
export interface ForeignPrimaryOptions {
  /** Its epoch: an integer from 1 to 2^53 - 1. */
  readonly epoch: number;
  /** @default 'foreign' */
  readonly instanceId?: string;
  /** @default the cluster's heartbeatInterval */
  readonly heartbeatInterval?: number;
  /** @default 1 */
  readonly priority?: number;
}

export class ForeignPrimary implements Holder {
  readonly nodeId = undefined;
  readonly instanceId: string;
  readonly epoch: number;
  readonly #endpoint: MemoryEndpoint;
  readonly #clock: FakeClock;
  readonly #interval: number;
  readonly #priority: number;
  readonly #host = hostname();
  #seq = 0;
  #timer: TimerHandle | undefined;
  #gone = false;
  readonly #onLeave: (graceful: boolean) => void;

  /** @internal */
  constructor(endpoint: MemoryEndpoint, clock: FakeClock, options: Required<ForeignPrimaryOptions>, onLeave: (graceful: boolean) => void) {
    this.#endpoint = endpoint;
    this.#onLeave = onLeave;
    this.#clock = clock;
    this.instanceId = options.instanceId;
    this.epoch = options.epoch;
    this.#interval = options.heartbeatInterval;
    this.#priority = options.priority;
  }

  /** Whether it still holds (or believes it holds) the endpoint. */
  get holding(): boolean {
    return !this.#gone && this.#endpoint.holder === this;
  }

  /** @internal */
  seize(): void {
    this.#endpoint.seize(this);
    this.#endpoint.send(this, this.#frames('instance.promoted'));
    this.#beat();
  }

  /**
   * Gives the endpoint up: `graceful` (the default) sends `instance.shutdown` first, so that a
   * secondary takes over at once; otherwise it vanishes as a crashed process does.
   */
  leave(options: { readonly graceful?: boolean } = {}): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#onLeave(options.graceful !== false);
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#endpoint.vacate(this, options.graceful === false ? undefined : this.#frames('instance.shutdown'));
  }

  presence(): void {}

  subscribed(): void {
    if (!this.#gone) this.#endpoint.send(this, this.#frames('instance.heartbeat'));
  }

  #beat(): void {
    this.#endpoint.send(this, this.#frames('instance.heartbeat'));
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      if (!this.#gone) this.#beat();
    }, this.#interval);
  }

  #frames(topic: Topic): Frames {
    return encode(topic, {
      version: PROTOCOL_VERSION,
      instanceId: this.instanceId,
      epoch: this.epoch,
      seq: ++this.#seq,
      sentAt: this.#clock.wallNow(),
      pid: process.pid,
      host: this.#host,
      heartbeatInterval: this.#interval,
      priority: this.#priority,
      members: [],
    });
  }
}
