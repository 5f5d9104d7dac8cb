/**
 * The event side shared by the Watcher and the Redis Cluster. Listeners are isolated: a throw or
 * a rejection is caught and counted (and handed to `onListenerError`), never reaching the state
 * machine; `once` listeners are isolated the same way. Role changes also go to bounded async
 * streams whose drops are counted. No event is ever called `error`.
 *
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import { ChangeStream } from './change-stream.js';

export class Notifier<Events extends EventEmitter.ValidEventTypes, Change> extends EventEmitter<Events> {
  #streams = new Set<ChangeStream<Change>>();
  #streamsEnded = false;
  #notificationsDropped = 0;
  #listenerErrors = 0;

  /** Like `on`, but once; the listener is isolated like every other (its throw is caught and counted). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override once(event: EventEmitter.EventNames<Events>, listener: (...args: any[]) => void, context?: unknown): this {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const wrapper: any = (payload: unknown): unknown => {
      this.off(event, wrapper);
      return listener.call(context ?? this, payload);
    };
    return this.on(event, wrapper);
  }

  /** Changes dropped by slow stream consumers. */
  protected get notificationsDropped(): number {
    return this.#notificationsDropped;
  }

  /** Listener calls that threw or rejected. */
  protected get listenerErrors(): number {
    return this.#listenerErrors;
  }

  /** A new bounded stream of changes; already ended if the streams were. */
  protected openChangeStream(capacity: number): AsyncIterableIterator<Change> {
    const stream: ChangeStream<Change> = new ChangeStream<Change>(
      capacity,
      () => {
        this.#notificationsDropped++;
      },
      () => {
        this.#streams.delete(stream);
      },
    );
    if (this.#streamsEnded) stream.end();
    else this.#streams.add(stream);
    return stream;
  }

  /** Hands a change to every stream, never waiting. */
  protected pushChange(change: Change): void {
    for (const stream of this.#streams) stream.push(change);
  }

  /** Ends every stream once its buffered changes are consumed; later streams start ended. */
  protected endChangeStreams(): void {
    this.#streamsEnded = true;
    for (const stream of this.#streams) stream.end();
  }

  /** Calls each listener of `event` with `payload`, isolating throws and rejections. */
  protected emitSafely(event: EventEmitter.EventNames<Events>, payload: unknown): void {
    for (const listener of this.listeners(event)) {
      try {
        const result: unknown = (listener as (p: unknown) => unknown).call(this, payload);
        if (result instanceof Promise) result.catch((error: unknown) => this.#failed(String(event), error));
      } catch (error) {
        this.#failed(String(event), error);
      }
    }
  }

  /** Reports a listener's throw or rejection (the subclass logs it). */
  protected onListenerError(_event: string, _error: unknown): void {}

  #failed(event: string, error: unknown): void {
    this.#listenerErrors++;
    this.onListenerError(event, error);
  }
}
