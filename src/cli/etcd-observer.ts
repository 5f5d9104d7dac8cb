/**
 * A read-only look at an etcd election for `status --etcd` and `watch --etcd`: it reads the
 * campaign keys under the election's prefix (`<prefix>/<project>/election/`, the layout and
 * parsing of `../etcd.ts`), the remaining TTL of the first key's lease, and watches the prefix.
 * It never grants a lease, never writes or deletes a key: it never campaigns (docs/ETCD.md,
 * "Observing").
 *
 * The first key in create-revision order leads, and its create revision is the epoch, exactly as
 * the election's followers read it. Keys under the prefix that are not a campaign are skipped.
 * Loaded only by those commands with `--etcd`, so etcd3 stays out of every other path. Every
 * call is bounded by `timeout` (etcd calls hang without quorum).
 *
 * @module
 */
import { Etcd3, type Watcher } from 'etcd3';
import { campaignLine, campaignPrefix } from '../etcd.js';
import type { Metadata } from '../protocol/metadata.js';
import type { LeaseSnapshot } from './redis-observer.js';
import { withDeadline } from '../runtime/deadline.js';

/** Options of {@link EtcdObserver}. */
export interface EtcdObserverOptions {
  /** Client URLs of the members, http:// or https://, with user:password@ for etcd's auth. */
  readonly hosts: readonly string[];
  /** The election's key prefix (the election's `prefix` option). */
  readonly prefix: string;
  readonly project: string;
  /** Bound on each call, ms. */
  readonly timeout: number;
}

/** One etcd client (and a watcher with {@link EtcdObserver.subscribe}). */
export class EtcdObserver {
  /** The key prefix read and watched. */
  readonly dir: string;
  readonly #client: Etcd3;
  readonly #timeout: number;
  #watcher: Watcher | undefined;
  #closed = false;

  /** Throws `InvalidOptionError` for a project the election would refuse. */
  constructor(options: EtcdObserverOptions) {
    this.dir = campaignPrefix(options.prefix, options.project);
    this.#timeout = options.timeout;
    const { hosts, auth } = splitAuth(options.hosts);
    this.#client = new Etcd3({ hosts, ...(auth === undefined ? {} : { auth }), dialTimeout: options.timeout });
  }

  /** One bounded read of the prefix (etcd3 connects lazily): rejects when etcd does not answer. */
  async connect(): Promise<void> {
    await this.#bounded(this.#client.getAll().prefix(this.dir).limit(1).keys());
  }

  /** One range read of the campaign line, then the lease TTL of its first key. */
  async read(): Promise<LeaseSnapshot> {
    const res = await this.#bounded(this.#client.getAll().prefix(this.dir).sort('Create', 'Ascend').exec());
    const line = campaignLine(res.kvs);
    const first = line[0];
    let ttlMs = 0;
    if (first !== undefined && first.leaseId !== '0') {
      const lease = await this.#bounded(this.#client.leaseClient.leaseTimeToLive({ ID: first.leaseId }));
      ttlMs = Math.max(0, Number(lease.TTL) * 1000);
    }
    // Metadata in the key's value; null where it breaks the rules (the key stays in line).
    const metadataOf = (k: (typeof line)[number]): Metadata | null => (k.metadataInvalid === true ? null : (k.metadata ?? {}));
    return {
      leader: first === undefined ? undefined : { nodeId: first.nodeId, revision: first.createRevision, priority: first.priority, ttlMs, since: null, metadata: metadataOf(first) },
      revisionCounter: Number(res.header.revision),
      liveNodes: line.map((k, i) => ({ nodeId: k.nodeId, priority: k.priority, eligible: true, lastSeen: null, isLeader: i === 0, metadata: metadataOf(k) })),
      metadataDropped: line.filter((k) => k.metadataInvalid === true).length,
      // etcd has no server clock to read: the local time of the answer.
      serverTime: Date.now(),
    };
  }

  /** Watches the prefix; `onChange` runs on every put or delete under it and on every (re)connect. */
  async subscribe(onChange: () => void): Promise<void> {
    const watcher = await this.#bounded(this.#client.watch().prefix(this.dir).create());
    if (this.#closed) {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    this.#watcher = watcher;
    watcher.on('put', () => onChange());
    watcher.on('delete', () => onChange());
    watcher.on('connected', () => onChange());
    // Errors surface through the reads; the event must not throw.
    watcher.on('error', () => undefined);
  }

  /** Cancels the watch and closes the client; never rejects. */
  async close(): Promise<void> {
    this.#closed = true;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (watcher !== undefined) await this.#bounded(watcher.cancel()).catch(() => undefined);
    this.#client.close();
  }

  #bounded<T>(promise: Promise<T>): Promise<T> {
    return withDeadline(promise, this.#timeout);
  }
}

/** The hosts without credentials, and the credentials of the first URL that has them. */
function splitAuth(urls: readonly string[]): { hosts: string[]; auth: { username: string; password: string } | undefined } {
  let auth: { username: string; password: string } | undefined;
  const hosts = urls.map((raw) => {
    const url = new URL(raw);
    if (auth === undefined && url.username !== '') {
      auth = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    }
    return `${url.protocol}//${url.host}`;
  });
  return { hosts, auth };
}
