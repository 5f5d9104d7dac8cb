/**
 * A read-only look at a Redis election for `status --redis` and `watch --redis`: it reads the
 * lease (`{project}:leader` and its remaining TTL), the live registrations (`{project}:nodes`,
 * `{project}:node-info`), their application metadata (`{project}:metadata`) and listens to the project's channel (`{project}:leadership`). It never
 * campaigns, never runs a lease script and never writes a key (docs/REDIS.md, "Observing").
 *
 * Loaded only by those commands with `--redis`, so ioredis stays out of the ZeroMQ paths.
 * Malformed key contents are read as absent (no leader, a node without info), never thrown.
 *
 * @module
 */
import { Redis } from 'ioredis';
import { leaseKeys, type LeaseKeys } from '../transport/redis/lease-keys.js';
import { parseJson, revisionOf, storedMetadata } from '../transport/redis/redis-lease-store.js';
import type { Metadata } from '../protocol/metadata.js';

/**
 * One read of the lease and the live nodes. Times are server times. The etcd and PostgreSQL
 * observers answer in the same shape, so `status` and `watch` print every lease backend alike.
 */
export interface LeaseSnapshot {
  /** The lease holder, undefined when the lease is free (or expired). */
  readonly leader:
    | {
        readonly nodeId: string;
        readonly revision: number;
        readonly priority: number | null;
        /** The lease's remaining lifetime (PTTL), ms; null where the role has no lease (PostgreSQL). */
        readonly ttlMs: number | null;
        /** Server ms since the Unix epoch of its `elected` event, when the recent events hold it. */
        readonly since: number | null;
        /** Its application metadata: `{}` when none, null when what is stored breaks the rules (dropped). */
        readonly metadata: Metadata | null;
      }
    | undefined;
  /** The last revision handed out (the `{project}:revision` counter), 0 when never. */
  readonly revisionCounter: number;
  /** Registered nodes whose registration has not ended, best priority first. */
  readonly liveNodes: ReadonlyArray<{
    readonly nodeId: string;
    readonly priority: number | null;
    readonly eligible: boolean;
    /** Server ms since the Unix epoch of its last lease operation, null when unknown. */
    readonly lastSeen: number | null;
    readonly isLeader: boolean;
    /** Its application metadata: `{}` when none, null when what is stored breaks the rules (dropped). */
    readonly metadata: Metadata | null;
  }>;
  /** Stored metadata of the leader and the live nodes that broke the rules (read as null). */
  readonly metadataDropped: number;
  /** Redis server time of the read, ms since the Unix epoch. */
  readonly serverTime: number;
}

/** A pub/sub notice as published by the election's nodes (unvalidated fields dropped). */
export interface ObservedNotice {
  readonly type: string;
  readonly nodeId: string;
  readonly revision: number;
}

/** Options of {@link RedisObserver}. */
export interface RedisObserverOptions {
  readonly url: string;
  readonly project: string;
  /** Bound on connecting and on each command, ms. */
  readonly timeout: number;
}

/** A read-only connection (two with {@link RedisObserver.subscribe}). */
export class RedisObserver {
  readonly keys: LeaseKeys;
  readonly #client: Redis;
  #subscriber: Redis | undefined;

  constructor(options: RedisObserverOptions) {
    this.keys = leaseKeys(options.project);
    this.#client = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: options.timeout,
      commandTimeout: options.timeout,
      retryStrategy: (times: number) => Math.min(50 * times, 500),
      enableReadyCheck: false,
    });
    // Connection errors surface through the commands that fail; the event must not throw.
    this.#client.on('error', () => undefined);
  }

  /** Connects; rejects with the connection error. */
  async connect(): Promise<void> {
    await this.#client.connect();
  }

  /** A read of the lease (one MULTI/EXEC) and then of the live nodes (two more round trips). */
  async read(): Promise<LeaseSnapshot> {
    const k = this.keys;
    const r = await this.#client
      .multi()
      .hmget(k.leader, 'node', 'rev', 'prio')
      .pttl(k.leader)
      .get(k.revision)
      .time()
      .lrange(k.events, 0, 19)
      .exec();
    if (r === null) throw new Error('the read was aborted');
    for (const [error] of r) if (error !== null) throw error;
    const [node, rev, prio] = r[0]?.[1] as Array<string | null>;
    const ttl = Number(r[1]?.[1]);
    const counter = revisionOf(r[2]?.[1]);
    const [sec, usec] = r[3]?.[1] as [string, string];
    const serverTime = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const revision = revisionOf(rev);
    const elected = (r[4]?.[1] as string[]).map(parseJson).find(
      (e) => e?.action === 'elected' && e.nodeId === node && revisionOf(e.revision) === revision,
    );
    const holder = typeof node === 'string' && node !== '' && ttl > 0 ? node : undefined;

    const ids = await this.#client.zrangebyscore(k.nodes, serverTime, '+inf');
    const infos = ids.length === 0 ? [] : await this.#client.hmget(k.nodeInfo, ...ids);
    // The leader's metadata first, then each live node's; a value that breaks the rules is null.
    const metaIds = holder === undefined ? ids : [holder, ...ids];
    const stored = metaIds.length === 0 ? [] : (await this.#client.hmget(k.metadata, ...metaIds)).map(storedMetadata);
    const metadataOf = (i: number): Metadata | null => {
      const m = stored[i];
      return m === 'invalid' ? null : (m ?? {});
    };
    const offset = holder === undefined ? 0 : 1;
    const metadataDropped = new Set(metaIds.filter((_, i) => stored[i] === 'invalid')).size;
    const leader =
      holder !== undefined
        ? { nodeId: holder, revision, priority: numberOrNull(prio), ttlMs: ttl, since: numberOrNull(elected?.timestamp), metadata: metadataOf(0) }
        : undefined;
    const liveNodes = ids.map((nodeId, i) => {
      const info = parseJson(infos[i]);
      return {
        nodeId,
        priority: numberOrNull(info?.priority),
        eligible: info?.eligible === true,
        lastSeen: numberOrNull(info?.lastSeen),
        isLeader: nodeId === leader?.nodeId,
        metadata: metadataOf(i + offset),
      };
    });
    liveNodes.sort((a, b) => (a.priority ?? Infinity) - (b.priority ?? Infinity) || a.nodeId.localeCompare(b.nodeId));
    return { leader, revisionCounter: counter, liveNodes, serverTime, metadataDropped };
  }

  /** Subscribes to the project's channel on a second connection; resolves once subscribed. */
  async subscribe(onNotice: (notice: ObservedNotice | undefined) => void): Promise<void> {
    const sub = this.#client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true, commandTimeout: undefined });
    sub.on('error', () => undefined);
    this.#subscriber = sub;
    sub.on('message', (_channel: string, message: string) => {
      const v = parseJson(message);
      onNotice(
        v !== undefined && typeof v.type === 'string' && typeof v.nodeId === 'string'
          ? { type: v.type, nodeId: v.nodeId, revision: revisionOf(v.revision) }
          : undefined,
      );
    });
    await sub.subscribe(this.keys.channel);
  }

  /** Closes every connection; never rejects. */
  async close(): Promise<void> {
    for (const c of [this.#subscriber, this.#client]) {
      if (c === undefined) continue;
      try {
        c.disconnect();
      } catch {
        // Already closed.
      }
    }
  }
}

function numberOrNull(value: unknown): number | null {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value !== '' ? Number(value) : Number.NaN;
  return Number.isFinite(n) ? n : null;
}
