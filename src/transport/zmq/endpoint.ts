/**
 * Cluster endpoints: parsing and what makes each kind exclusive.
 *
 * - `tcp://HOST:PORT`: the kernel refuses a second listener (EADDRINUSE) and frees the port when
 *   the holder dies. HOST must be an address this host can bind (127.0.0.1 for one machine).
 * - `ipc://@NAME` (Linux abstract socket): exclusive the same way, no file left behind.
 * - `ipc:///PATH` (filesystem socket): NOT exclusive (libzmq unlinks an existing file on bind),
 *   so the transport guards it with a lock of its own (see `path-lock.ts`).
 *
 * @module
 */

/** A parsed endpoint. */
export type Endpoint =
  | { readonly kind: 'tcp'; readonly address: string; readonly host: string; readonly port: number }
  | { readonly kind: 'ipc-abstract'; readonly address: string; readonly name: string }
  | { readonly kind: 'ipc-path'; readonly address: string; readonly path: string };

/** Parses an endpoint; returns a reason string when it is not valid. */
export function parseEndpoint(address: string): Endpoint | string {
  if (address.startsWith('tcp://')) {
    const rest = address.slice('tcp://'.length);
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(rest);
    if (m === null) return 'tcp://HOST:PORT with a host name or IP address and a port';
    const host = m[1] as string;
    const port = Number(m[2]);
    if (port < 1 || port > 65535) return 'a tcp port between 1 and 65535';
    if (host === '0.0.0.0' || host === '[::]') {
      return 'a tcp host that peers can connect to (not the wildcard address)';
    }
    return { kind: 'tcp', address, host, port };
  }
  if (address.startsWith('ipc://@')) {
    const name = address.slice('ipc://@'.length);
    if (name.length === 0 || name.length > 100) return 'ipc://@NAME with a name of 1-100 characters';
    return { kind: 'ipc-abstract', address, name };
  }
  if (address.startsWith('ipc://')) {
    const path = address.slice('ipc://'.length);
    if (!path.startsWith('/')) return 'ipc:///ABSOLUTE/PATH or ipc://@NAME';
    if (path.length > 100) return 'an ipc path of at most 100 characters (the unix socket limit)';
    return { kind: 'ipc-path', address, path };
  }
  return 'an endpoint of the form tcp://HOST:PORT, ipc://@NAME or ipc:///ABSOLUTE/PATH';
}

/** A file-name-safe slug of an endpoint, for default work directories. */
export function endpointSlug(address: string): string {
  return address.replace(/[^A-Za-z0-9.-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 120);
}
