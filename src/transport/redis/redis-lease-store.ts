/**
 * The lease store over ioredis: one command connection for the lease scripts and one
 * subscriber connection for the project's pub/sub channel.
 *
 * Connection defaults chosen for an election (each may be overridden through `redisOptions`):
 * - `enableOfflineQueue: false` and `maxRetriesPerRequest: 0`: while Redis is unreachable an
 *   operation fails at once instead of queueing; the next tick tries again;
 * - `commandTimeout`: an operation on a paused Redis (its socket open, no answer) fails after
 *   this long (the driver passes `maxDrift`);
 * - `retryStrategy`: reconnect every 50 ms rising to `tickInterval`, so the election resumes
 *   within about a tick of Redis coming back (the subscriber: rising to 250 ms, see below);
 * - `enableReadyCheck: false`: ioredis's ready check runs INFO, which an ACL user limited to the
 *   project's keys (docs/SECURITY.md) may not run, and ioredis then printed a NOPERM warning on
 *   the console for each connection. Without it, a Redis still loading its data set answers the
 *   lease scripts with LOADING: they fail like any operation on an unreachable Redis and are
 *   tried again at the next tick, as they were while the ready check waited.
 * Foreign errors are translated once here into {@link FailoverError}s.
 *
 * @module
 */
import { Redis, type RedisOptions } from 'ioredis';
import { EventEmitter } from 'node:events';
import { MAX_REVISION, type LeaderView, type Notice, type OpReply, type AcquiredFrom } from '../../core/lease-machine.js';
import { FailoverError } from '../../errors.js';
import { scriptKeys, type LeaseKeys } from './lease-keys.js';
import { LEASE_SCRIPTS, type LeaseScript } from './lease-scripts.js';
import type {
  LeadershipAction,
  LeadershipEvent,
  LeaseStore,
  LeaseStoreHandlers,
  LiveNode,
  OpArgs,
  ReleaseReason,
  StoredMetadata,
} from './lease-store.js';
import { checkMetadata, MAX_METADATA_BYTES, type Metadata } from '../../protocol/metadata.js';

/** Who this store speaks for. */
export interface RedisLeaseStoreConfig {
  readonly keys: LeaseKeys;
  readonly nodeId: string;
  /** A random id of this process's election: the lease's owner. */
  readonly session: string;
  readonly priority: number;
  readonly strategy: 'race' | 'priority';
  readonly leaseTTL: number;
  readonly tickInterval: number;
  readonly commandTimeout: number;
  readonly eventsLimit: number;
  readonly redisUrl: string | undefined;
  readonly redisOptions: RedisOptions | undefined;
}

const ACTIONS: ReadonlySet<string> = new Set<LeadershipAction>(['elected', 'released', 'expired']);
const FROM: ReadonlySet<string> = new Set<AcquiredFrom>(['vacant', 'released', 'expired', 'self']);

const ignore = (): void => {};

/** The longest wait between two reconnects of the subscriber connection, ms. */
const SUBSCRIBER_RETRY_MAX = 250;

/**
 * ioredis listens for one `error` per socket. A TLS socket ended in the middle of its handshake
 * (closing while a reconnect to a server with an untrusted certificate runs) emits a second one,
 * the server's alert after the verification error, which would then be an unhandled `error`
 * event and crash the process. Closing sockets keep a listener that drops such late errors.
 * (`stream` and `connector` are ioredis internals; when absent, nothing is done.)
 */
function absorbLateErrors(redis: Redis): void {
  const r = redis as unknown as { stream?: unknown; connector?: { stream?: unknown } };
  for (const stream of new Set([r.stream, r.connector?.stream])) {
    if (stream instanceof EventEmitter && !stream.listeners('error').includes(ignore)) stream.on('error', ignore);
  }
}

export class RedisLeaseStore implements LeaseStore {
  readonly #config: RedisLeaseStoreConfig;
  readonly #client: Redis;
  readonly #subscriber: Redis;
  readonly #keys: string[];
  #closed = false;
  /** Why the command connection is down (its last error), for failed operations' messages. */
  #connectionError: string | undefined;

  constructor(config: RedisLeaseStoreConfig) {
    this.#config = config;
    this.#keys = scriptKeys(config.keys);
    const tick = config.tickInterval;
    const defaults: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: config.commandTimeout,
      connectTimeout: Math.max(1000, config.leaseTTL),
      retryStrategy: (times: number) => Math.min(50 * times, tick),
      enableReadyCheck: false,
    };
    const options: RedisOptions = { ...defaults, ...config.redisOptions, lazyConnect: true };
    this.#client =
      config.redisOptions === undefined && config.redisUrl !== undefined
        ? new Redis(config.redisUrl, options)
        : new Redis(options);
    // The subscriber may queue its SUBSCRIBE until connected, and resubscribes after a reconnect.
    // It reconnects every 50 ms rising to at most SUBSCRIBER_RETRY_MAX, not to a tick: while it
    // is down, notices are missed, and a handover right after Redis came back would otherwise
    // wait for the standby's next tick (seen: 1 s with 1.2 s ticks).
    this.#subscriber = this.#client.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResubscribe: true,
      commandTimeout: undefined,
      lazyConnect: true,
      ...(config.redisOptions?.retryStrategy === undefined
        ? { retryStrategy: (times: number) => Math.min(50 * times, SUBSCRIBER_RETRY_MAX, tick) }
        : {}),
    });
  }

  open(handlers: LeaseStoreHandlers): void {
    const client = this.#client;
    client.on('ready', () => {
      this.#connectionError = undefined;
      handlers.onConnected();
    });
    client.on('error', (error: Error) => {
      this.#connectionError = error.message;
      handlers.onConnectionLost(error.message);
    });
    client.on('close', () => {
      if (!this.#closed) handlers.onConnectionLost('connection closed');
    });
    const sub = this.#subscriber;
    sub.on('error', () => {
      // Reported through the command connection; the subscriber reconnects on its own.
    });
    // Subscribed again after a gap: a notice published meanwhile was missed. An operation now
    // reads what it would have said (a lease released, a new leader).
    // (Not before the command connection is ready: its own 'ready' runs one then.)
    sub.on('ready', () => {
      if (!this.#closed && this.#client.status === 'ready') handlers.onConnected();
    });
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#config.keys.channel) return;
      const announced = parseMetadataNotice(message);
      if (announced !== undefined) {
        handlers.onMetadataNotice?.(announced);
        return;
      }
      const notice = parseNotice(message);
      if (notice !== undefined) handlers.onNotice(notice);
    });
    client.connect().catch(() => {
      // Retried by retryStrategy; failures surface as failed operations.
    });
    // Queued until the first connection (however late), then renewed after every reconnect.
    sub.subscribe(this.#config.keys.channel).catch(() => undefined);
  }

  async acquire(args: OpArgs): Promise<OpReply> {
    const r = asArray(await this.#run(LEASE_SCRIPTS.acquire, args, 'acquire'));
    const duplicate = r[1] === 1;
    if (r[0] === 'acquired') {
      const from = String(r[3]);
      // Exactly what the script handed out (NaN for anything that is not a safe integer: the
      // election then refuses to lead with it).
      return { kind: 'acquire', outcome: 'acquired', revision: exactRevision(r[2]), from: FROM.has(from) ? (from as AcquiredFrom) : 'vacant', duplicate };
    }
    if (r[0] === 'taken') return { kind: 'acquire', outcome: 'taken', leader: leaderView(r[2], r[3], r[4]), duplicate };
    if (r[0] === 'deferred') return { kind: 'acquire', outcome: 'deferred', leader: undefined, duplicate };
    if (r[0] === 'exhausted') return { kind: 'acquire', outcome: 'exhausted', counter: String(r[2] ?? ''), duplicate };
    throw new FailoverError('ERR_FAILOVER_TRANSPORT', `unexpected acquire reply ${JSON.stringify(r[0])}`);
  }

  async refresh(args: OpArgs): Promise<OpReply> {
    const r = asArray(await this.#run(LEASE_SCRIPTS.refresh, args, 'refresh'));
    const duplicate = r[1] === 1;
    if (r[0] === 'refreshed') {
      return { kind: 'refresh', outcome: 'refreshed', betterNode: typeof r[2] === 'string' ? r[2] : undefined, duplicate };
    }
    if (r[0] === 'lost') return { kind: 'refresh', outcome: 'lost', leader: leaderView(r[2], r[3], r[4]), duplicate };
    throw new FailoverError('ERR_FAILOVER_TRANSPORT', `unexpected refresh reply ${JSON.stringify(r[0])}`);
  }

  async observe(args: OpArgs): Promise<OpReply> {
    const r = asArray(await this.#run(LEASE_SCRIPTS.observe, args, 'observe'));
    return { kind: 'observe', leader: leaderView(r[2], r[3], r[4]), duplicate: r[1] === 1 };
  }

  async release(reason: ReleaseReason, deregister: boolean, revision?: number): Promise<boolean> {
    // Always EVAL, never EVALSHA: EVALSHA of a script the server has not cached yet answers
    // NOSCRIPT, and the EVAL sent then would run after every operation sent meanwhile (an
    // acquire that took the lease again included), and delete that later term.
    const fence = revision === undefined ? '' : String(revision);
    const r = await this.#run(LEASE_SCRIPTS.release, { eligible: false, knownRevision: 0 }, 'release', reason, deregister, fence, true);
    // A node that leaves takes its metadata with it (best effort: readers only look up live nodes).
    if (deregister) await this.#client.hdel(this.#config.keys.metadata, this.#config.nodeId).catch(() => undefined);
    return r === 1;
  }

  async writeMetadata(metadata: Metadata): Promise<void> {
    const k = this.#config.keys;
    const id = this.#config.nodeId;
    try {
      // A pipeline, not MULTI: the recommended ACL (SECURITY.md) has no @transaction, and one
      // connection keeps the order anyway (the field is written before the notice goes out).
      const pipeline = this.#client.pipeline();
      if (Object.keys(metadata).length === 0) pipeline.hdel(k.metadata, id);
      else pipeline.hset(k.metadata, id, JSON.stringify(metadata));
      pipeline.publish(k.channel, JSON.stringify({ type: 'metadata', nodeId: id }));
      const r = await pipeline.exec();
      for (const [error] of r ?? []) if (error !== null) throw error;
    } catch (error) {
      throw translate(error, 'writing metadata');
    }
  }

  async readMetadata(nodeIds: readonly string[]): Promise<StoredMetadata[]> {
    if (nodeIds.length === 0) return [];
    let raw: Array<string | null>;
    try {
      raw = await this.#client.hmget(this.#config.keys.metadata, ...nodeIds);
    } catch (error) {
      throw translate(error, 'reading metadata');
    }
    return raw.map(storedMetadata);
  }

  async liveNodes(): Promise<LiveNode[]> {
    const r = asArray(await this.#run(LEASE_SCRIPTS.live, { eligible: false, knownRevision: 0 }, 'liveNodes'));
    const leader = typeof r[0] === 'string' ? r[0] : undefined;
    const nodes: LiveNode[] = [];
    for (let i = 2; i + 1 < r.length; i += 2) {
      const nodeId = String(r[i]);
      const info = parseJson(r[i + 1]);
      nodes.push({
        nodeId,
        priority: typeof info?.priority === 'number' ? info.priority : Number.NaN,
        isLeader: nodeId === leader,
        lastSeen: typeof info?.lastSeen === 'number' ? info.lastSeen : Number.NaN,
        eligible: info?.eligible === true,
      });
    }
    nodes.sort((a, b) => a.priority - b.priority || a.nodeId.localeCompare(b.nodeId));
    if (nodes.length === 0) return nodes;
    // Their metadata, when it can be read (a failed or malformed read leaves it out).
    const stored = await this.readMetadata(nodes.map((n) => n.nodeId)).catch(() => undefined);
    if (stored === undefined) return nodes;
    return nodes.map((n, i) => {
      const m = stored[i];
      return m === 'invalid' ? n : { ...n, metadata: m ?? {} };
    });
  }

  async events(limit: number): Promise<LeadershipEvent[]> {
    let raw: string[];
    try {
      raw = await this.#client.lrange(this.#config.keys.events, 0, Math.max(0, limit - 1));
    } catch (error) {
      throw translate(error, 'reading events');
    }
    const events: LeadershipEvent[] = [];
    for (const item of raw) {
      const e = parseJson(item);
      if (e === undefined || typeof e.nodeId !== 'string' || typeof e.action !== 'string' || !ACTIONS.has(e.action)) continue;
      events.push({
        nodeId: e.nodeId,
        action: e.action as LeadershipAction,
        timestamp: typeof e.timestamp === 'number' ? e.timestamp : Number.NaN,
        revision: revisionOf(e.revision),
        reason: typeof e.reason === 'string' ? e.reason : undefined,
      });
    }
    return events;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const bounded = (p: Promise<unknown>) =>
      Promise.race([p.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 200).unref())]);
    absorbLateErrors(this.#client);
    absorbLateErrors(this.#subscriber);
    await Promise.all([
      bounded(this.#client.quit()),
      bounded(this.#subscriber.quit()),
    ]);
    // A reconnect may have opened new sockets meanwhile: those are the ones disconnect() ends.
    absorbLateErrors(this.#client);
    absorbLateErrors(this.#subscriber);
    this.#client.disconnect();
    this.#subscriber.disconnect();
  }

  async #run(
    script: LeaseScript,
    args: OpArgs,
    what: string,
    reason = '',
    deregister = false,
    fence = '',
    inOrder = false,
  ): Promise<unknown> {
    const c = this.#config;
    const argv: (string | number)[] = [
      c.nodeId,
      c.session,
      c.priority,
      args.eligible ? '1' : '0',
      Math.ceil(c.leaseTTL),
      c.strategy,
      c.keys.channel,
      c.eventsLimit,
      args.knownRevision,
      reason,
      deregister ? '1' : '0',
      fence,
    ];
    try {
      // In order: one command, run where it was sent among this connection's commands.
      if (inOrder) return await this.#client.eval(script.lua, this.#keys.length, ...this.#keys, ...argv);
      try {
        return await this.#client.evalsha(script.sha, this.#keys.length, ...this.#keys, ...argv);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return await this.#client.eval(script.lua, this.#keys.length, ...this.#keys, ...argv);
      }
    } catch (error) {
      throw this.#notConnected(error, what) ?? translate(error, what);
    }
  }

  /**
   * ioredis refuses a command while not connected with "Stream isn't writeable and
   * enableOfflineQueue options is false", which says nothing of why: name the connection's last
   * error instead (a refused connection, a certificate the client does not trust, a reset), with
   * a hint when a plain connection is reset, as a TLS-only server does.
   */
  #notConnected(error: unknown, what: string): FailoverError | undefined {
    const status = this.#client.status;
    if (status === 'ready') return undefined;
    const why = this.#connectionError ?? `connection ${status}`;
    const plain = this.#client.options.tls === undefined;
    const reset = /ECONNRESET|EPIPE|Connection is closed/i.test(why);
    const hint = plain && reset ? ' (if the server requires TLS, use a rediss:// URL or redisOptions.tls)' : '';
    return new FailoverError('ERR_FAILOVER_TRANSPORT', `Redis ${what} failed: not connected: ${why}${hint}`, { cause: error });
  }
}

function translate(error: unknown, what: string): FailoverError {
  if (error instanceof FailoverError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FailoverError('ERR_FAILOVER_TRANSPORT', `Redis ${what} failed: ${message}`, { cause: error });
}

function asArray(reply: unknown): unknown[] {
  if (!Array.isArray(reply)) throw new FailoverError('ERR_FAILOVER_TRANSPORT', `unexpected script reply ${typeof reply}`);
  return reply;
}

/** A revision reply of the scripts (decimal text, or an integer): the number when it is a safe integer, else NaN. */
function exactRevision(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : Number.NaN;
}

/**
 * A revision someone else reported (the leader's, a notice's, an event's): a larger integer than
 * 2^53 - 1 counts as 2^53 - 1, never as a smaller one (a new term must exceed it, which no valid
 * revision can); anything that is not a non-negative integer counts as 0.
 */
export function revisionOf(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) && !(n > MAX_REVISION)) return 0;
  return n < 0 ? 0 : Math.min(n, MAX_REVISION);
}

function leaderView(node: unknown, rev: unknown, prio: unknown): LeaderView | undefined {
  if (typeof node !== 'string') return undefined;
  return { nodeId: node, revision: revisionOf(rev), priority: prio === null || prio === undefined ? Number.NaN : Number(prio) };
}

/** A JSON object, or undefined for anything else (never throws). */
export function parseJson(raw: unknown): Record<string, unknown> | undefined {
  if (typeof raw !== 'string' || raw === '') return undefined;
  try {
    const v: unknown = JSON.parse(raw);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A node's metadata as stored (a JSON object of strings): the map, undefined when none is
 * stored, `'invalid'` when the value breaks the rules of protocol/metadata.ts (never thrown).
 */
export function storedMetadata(raw: unknown): StoredMetadata {
  if (raw === null || raw === undefined) return undefined;
  // JSON of a valid map is at most a few times its encoded size; longer is not parsed at all.
  if (typeof raw !== 'string' || raw.length > 8 * MAX_METADATA_BYTES) return 'invalid';
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return 'invalid';
  }
  const checked = checkMetadata(v);
  return checked.ok ? checked.metadata : 'invalid';
}

/** The nodeId of a `{"type":"metadata","nodeId":...}` notice; undefined for any other message. */
export function parseMetadataNotice(message: string): string | undefined {
  const v = parseJson(message);
  return v?.type === 'metadata' && typeof v.nodeId === 'string' ? v.nodeId : undefined;
}

function parseNotice(message: string): Notice | undefined {
  const v = parseJson(message);
  if (v === undefined) return undefined;
  if (v.type !== 'released' && v.type !== 'elected' && v.type !== 'preempt') return undefined;
  if (typeof v.nodeId !== 'string') return undefined;
  return {
    type: v.type,
    nodeId: v.nodeId,
    revision: revisionOf(v.revision),
    priority: typeof v.priority === 'number' ? v.priority : Number.NaN,
  };
}
