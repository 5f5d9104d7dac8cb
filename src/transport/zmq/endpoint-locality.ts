/**
 * Whether a cluster endpoint is an address of this host, so that this node could ever bind it.
 *
 * A tcp endpoint is only ever bound on the host that owns its address. A node on another host
 * that follows it (through a forwarded port, say) would get "Cannot assign requested address"
 * (EADDRNOTAVAIL) from every bind: it is an **observer**, and the watcher never asks it to bind.
 *
 * - ipc endpoints (abstract or filesystem) are always local;
 * - a tcp IP literal is local when it is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z:
 *   Linux routes all of 127/8 to the loopback interface) or an address of one of this host's
 *   interfaces (`os.networkInterfaces()`, read at the time of the check);
 * - `localhost` is local;
 * - another host name is local when any address it resolves to is (one lookup, at start, bounded
 *   by {@link LOOKUP_TIMEOUT}); a name that does not resolve in time is `unknown`, and the
 *   watcher then keeps binding as it would have (the bind itself reports what is wrong).
 *
 * The probe is injectable so tests can make a loopback address count as another host's and keep
 * all their traffic on loopback.
 *
 * @module
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Endpoint } from './endpoint.js';
import { withDeadline } from '../../runtime/deadline.js';

/** The outcome of {@link endpointLocality}; `detail` says why, for the log. */
export type Locality =
  | { readonly local: true; readonly detail: string }
  | { readonly local: false; readonly detail: string }
  | { readonly local: 'unknown'; readonly detail: string };

/** What the check asks of the host. @internal */
export interface LocalityProbe {
  /** True for an IP address (as a string, no brackets) that this host can bind. */
  isLocalAddress(address: string): boolean;
  /** The addresses a host name resolves to. */
  lookup(host: string): Promise<readonly string[]>;
}

/** Longest wait for a host name's lookup at start, ms. */
export const LOOKUP_TIMEOUT = 2000;

/** The probe of this host: loopback, then its interfaces' addresses, then DNS. */
export const systemLocalityProbe: LocalityProbe = {
  isLocalAddress(address: string): boolean {
    if (isLoopbackAddress(address)) return true;
    const wanted = canonicalAddress(address);
    for (const list of Object.values(networkInterfaces())) {
      for (const info of list ?? []) if (canonicalAddress(info.address) === wanted) return true;
    }
    return false;
  },
  async lookup(host: string): Promise<readonly string[]> {
    const found = await lookup(host, { all: true });
    return found.map((a) => a.address);
  },
};

/** Loopback: 127.0.0.0/8, ::1, and 127/8 mapped into IPv6. */
export function isLoopbackAddress(address: string): boolean {
  const a = canonicalAddress(address);
  const v4 = a.startsWith('::ffff:') ? a.slice('::ffff:'.length) : a;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return a === '::1';
}

/**
 * One spelling per address, so interface addresses and endpoint hosts compare: lower case, IPv6
 * compressed (the WHATWG URL parser's serialization), IPv4-mapped IPv6 in dotted form.
 */
export function canonicalAddress(address: string): string {
  const bare = address.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (isIP(bare) !== 6) return bare;
  try {
    const host = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
    // The URL parser writes ::ffff:127.0.0.1 as ::ffff:7f00:1.
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
    if (mapped === null) return host;
    const hi = parseInt(mapped[1] as string, 16);
    const lo = parseInt(mapped[2] as string, 16);
    return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  } catch {
    return bare;
  }
}

/** Whether this host could bind `endpoint` (see the module comment). */
export async function endpointLocality(
  endpoint: Endpoint,
  probe: LocalityProbe = systemLocalityProbe,
  timeout: number = LOOKUP_TIMEOUT,
): Promise<Locality> {
  if (endpoint.kind !== 'tcp') return { local: true, detail: 'an ipc endpoint is always local' };
  const host = endpoint.host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) !== 0) {
    return probe.isLocalAddress(host)
      ? { local: true, detail: `${host} is an address of this host` }
      : { local: false, detail: `${host} is not an address of this host` };
  }
  if (host.toLowerCase() === 'localhost') return { local: true, detail: 'localhost' };
  try {
    const addresses = await withDeadline(probe.lookup(host), timeout);
    const local = addresses.find((a) => probe.isLocalAddress(a));
    if (local !== undefined) return { local: true, detail: `${host} resolves to ${local}, an address of this host` };
    if (addresses.length === 0) return { local: 'unknown', detail: `${host} resolves to no address` };
    return { local: false, detail: `${host} resolves to ${addresses.join(', ')}, none of them an address of this host` };
  } catch (error) {
    return { local: 'unknown', detail: `${host} could not be resolved (${error instanceof Error ? error.message : String(error)})` };
  }
}
