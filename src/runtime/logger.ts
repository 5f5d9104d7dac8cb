/**
 * The logger port: any object with `debug`, `info`, `warn` and `error` methods taking a message
 * string (pino, console and winston fit).
 *
 * @module
 */

/** Anything with the four usual log methods. */
export interface Logger {
  debug(message: string, ...rest: unknown[]): void;
  info(message: string, ...rest: unknown[]): void;
  warn(message: string, ...rest: unknown[]): void;
  error(message: string, ...rest: unknown[]): void;
}

/** Discards everything. The default: a library stays quiet unless asked. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** Prefixes every message with `[failover-watch <id>]`; never lets a logger's throw escape. */
export function prefixed(logger: Logger, id: string): Logger {
  const wrap =
    (level: keyof Logger) =>
    (message: string, ...rest: unknown[]): void => {
      try {
        logger[level](`[failover-watch ${id}] ${message}`, ...rest);
      } catch {
        // A broken logger must not break the watcher.
      }
    };
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
