/**
 * The check of a transport given to a watcher (`new Watcher(options, { transport })`): done once,
 * at construction, so a wrong object fails there with an `InvalidOptionError` rather than at
 * the first promotion.
 *
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import type { Transport } from './transport.js';

const METHODS = ['open', 'probe', 'bind', 'publish', 'release', 'close'] as const;

/**
 * Checks the watcher's second argument: an object (or undefined) whose `transport`, if given,
 * has every method of {@link Transport}; `withCurve` (the watcher's `curve` option) cannot go
 * with a transport of one's own, which secures its sockets itself.
 */
export function checkTransportDeps(deps: unknown, withCurve: boolean): void {
  if (deps === undefined) return;
  if (typeof deps !== 'object' || deps === null || Array.isArray(deps)) {
    throw new InvalidOptionError('deps', 'an object such as { transport }', deps);
  }
  const transport = (deps as { transport?: unknown }).transport;
  if (transport === undefined) return;
  const missing =
    typeof transport !== 'object' || transport === null
      ? METHODS
      : METHODS.filter((m) => typeof (transport as Record<string, unknown>)[m] !== 'function');
  if (missing.length > 0) {
    throw new InvalidOptionError('transport', `a Transport (with ${METHODS.join(', ')}; missing ${missing.join(', ')})`, transport);
  }
  if (withCurve) {
    throw new InvalidOptionError('transport', 'no transport of your own with `curve` (the transport secures its own sockets)', 'a transport and curve');
  }
}

