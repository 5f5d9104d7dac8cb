/**
 * The one error family of failover-watch.
 *
 * Every error the library throws or rejects with is a {@link FailoverError} with a literal
 * `code`. Foreign errors (from zeromq, the file system, ioredis) are translated once, at the edge
 * that met them, and kept as `cause`. Expected outcomes (a lost bind race, a rejected message)
 * are values, not exceptions.
 *
 * @module
 */

/** Literal codes of {@link FailoverError}. */
export type FailoverErrorCode =
  /** An option had the wrong type, range or combination. */
  | 'ERR_FAILOVER_INVALID_OPTION'
  /** A `primary` watcher could not bind its endpoint because another process holds it. */
  | 'ERR_FAILOVER_ENDPOINT_IN_USE'
  /** A socket or endpoint operation failed for a reason other than "in use". */
  | 'ERR_FAILOVER_TRANSPORT'
  /** The state file in `workdir` could not be read or written, or `workdir` was refused as unsafe (the message names it and why). */
  | 'ERR_FAILOVER_STATE_FILE'
  /**
   * No valid epoch (ZeroMQ) or revision (Redis) is left: the next would exceed 2^53 - 1, the
   * largest integer every node accepts. The node does not promote; an operator resets the
   * counter (README, "Resetting the epoch"; docs/REDIS.md).
   */
  | 'ERR_FAILOVER_EPOCH_EXHAUSTED'
  /** The method is not valid in the watcher's current lifecycle state. */
  | 'ERR_FAILOVER_LIFECYCLE'
  /** A feature is not available on this platform (see {@link UnsupportedError}, docs/PLATFORMS.md). */
  | 'ERR_FAILOVER_UNSUPPORTED'
  /** A bounded wait ran out. */
  | 'ERR_FAILOVER_TIMEOUT';

/** Base class of every error failover-watch throws. */
export class FailoverError extends Error {
  readonly code: FailoverErrorCode;

  constructor(code: FailoverErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FailoverError';
    this.code = code;
  }
}

/**
 * Thrown when an option is invalid. The message names the option, what was expected and what was
 * received; the same three facts are available as properties.
 */
export class InvalidOptionError extends FailoverError {
  readonly option: string;
  readonly expected: string;
  readonly received: unknown;

  constructor(option: string, expected: string, received: unknown) {
    super(
      'ERR_FAILOVER_INVALID_OPTION',
      `Invalid option \`${option}\`: expected ${expected}, received ${describe(received)}`,
    );
    this.name = 'InvalidOptionError';
    this.option = option;
    this.expected = expected;
    this.received = received;
  }
}

/**
 * Thrown (code `ERR_FAILOVER_UNSUPPORTED`) when a watcher or a CLI command is constructed with
 * something the running platform cannot do (docs/PLATFORMS.md). The message names the option
 * (or command), the platform, why, and what to use instead; the same facts are properties.
 */
export class UnsupportedError extends FailoverError {
  readonly option: string;
  readonly platform: string;
  readonly instead: string;

  constructor(option: string, platform: string, why: string, instead: string) {
    super(
      'ERR_FAILOVER_UNSUPPORTED',
      `Unsupported \`${option}\` on ${platform}: ${why}${instead === '' ? '' : `; use ${instead} instead`} (docs/PLATFORMS.md)`,
    );
    this.name = 'UnsupportedError';
    this.option = option;
    this.platform = platform;
    this.instead = instead;
  }
}

/** Renders a received value for an error message without dumping large or secret objects. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`;
  }
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `an object`;
}

/** True when `error` is a {@link FailoverError} with the given code. */
export function isFailoverError(error: unknown, code?: FailoverErrorCode): error is FailoverError {
  return error instanceof FailoverError && (code === undefined || error.code === code);
}
