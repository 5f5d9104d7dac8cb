/**
 * A bound on a call that may never answer (a paused server, etcd without quorum, a DNS lookup).
 *
 * @module
 */

/**
 * `promise`, or a rejection `no answer within <ms> ms` once `ms` have passed; the timer is
 * cleared as soon as either settles. `unref`: the timer alone does not keep the process alive.
 * A rejection that is not an Error is wrapped in one.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, options: { readonly unref?: boolean } = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    if (options.unref === true) timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
