/**
 * A bounded async stream of notifications: producers never wait; when a consumer falls behind,
 * the oldest items are dropped and counted.
 *
 * @module
 */

export class ChangeStream<T> implements AsyncIterableIterator<T> {
  readonly #capacity: number;
  readonly #onDrop: () => void;
  readonly #onClose: () => void;
  #buffer: T[] = [];
  #waiting: ((result: IteratorResult<T>) => void) | undefined;
  #ended = false;

  constructor(capacity: number, onDrop: () => void, onClose: () => void) {
    this.#capacity = capacity;
    this.#onDrop = onDrop;
    this.#onClose = onClose;
  }

  /** Adds an item without ever waiting. */
  push(item: T): void {
    if (this.#ended) return;
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      waiting({ value: item, done: false });
      return;
    }
    this.#buffer.push(item);
    if (this.#buffer.length > this.#capacity) {
      this.#buffer.shift();
      this.#onDrop();
    }
  }

  /** Ends the stream once the buffered items are consumed. */
  end(): void {
    this.#ended = true;
    if (this.#buffer.length === 0) this.#finish();
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.#buffer.shift();
    if (item !== undefined) {
      if (this.#ended && this.#buffer.length === 0) this.#onClose();
      return Promise.resolve({ value: item, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.#ended = true;
    this.#buffer = [];
    this.#finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  #finish(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
    this.#onClose();
  }
}
