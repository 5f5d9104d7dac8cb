/**
 * An in-memory lease store with the same semantics as the Lua scripts, for tests on a fake
 * clock: several {@link MemoryLeaseStore}s (one per node) share one {@link MemoryLeaseServer}.
 * The server's time is the injected clock's `wallNow()`; `down = true` makes every operation
 * fail (an outage), `paused = true` makes them wait until it is set back (a SIGSTOPped server).
 *
 * Not a mock of Redis in integration tests: the real store is tested against a real server.
 *
 * @module
 */
import { MAX_REVISION, type AcquiredFrom, type LeaderView, type Notice, type OpReply } from '../../core/lease-machine.js';
import { FailoverError } from '../../errors.js';
import type { LeadershipEvent, LeaseStore, LeaseStoreHandlers, LiveNode, OpArgs, ReleaseReason } from './lease-store.js';

interface Lease {
  readonly session: string;
  readonly node: string;
  readonly rev: number;
  readonly prio: number;
  expiresAt: number;
}

interface Registration {
  readonly priority: number;
  readonly eligible: boolean;
  readonly session: string;
  readonly lastSeen: number;
  readonly expiresAt: number;
}

/** The shared state of one project. */
export class MemoryLeaseServer {
  readonly #now: () => number;
  lease: Lease | undefined;
  /** The revision counter (`{project}:revision`); a test may set it to anything, as `SET` could. */
  revision = 0;
  last: { node: string; state: 'held' | 'released'; rev: number } | undefined;
  readonly nodes = new Map<string, Registration>();
  events: LeadershipEvent[] = [];
  readonly subscribers = new Set<(notice: Notice) => void>();
  /** Every operation fails while true. */
  down = false;
  #paused = false;
  #waiting: Array<() => void> = [];

  constructor(now: () => number) {
    this.#now = now;
  }

  now(): number {
    return this.#now();
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** While paused, operations wait; unpausing runs them in order. */
  set paused(value: boolean) {
    this.#paused = value;
    if (!value) {
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const go of waiting) go();
    }
  }

  /** Runs `fn` as one atomic server-side operation. */
  async exec<T>(fn: () => T): Promise<T> {
    if (this.#paused) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    if (this.down) throw new FailoverError('ERR_FAILOVER_TRANSPORT', 'Redis unreachable (memory store is down)');
    return fn();
  }

  /** The lease if it has not expired. */
  current(): Lease | undefined {
    if (this.lease !== undefined && this.lease.expiresAt <= this.now()) this.lease = undefined;
    return this.lease;
  }

  publish(notice: Notice): void {
    for (const s of this.subscribers) queueMicrotask(() => s(notice));
  }

  event(nodeId: string, action: LeadershipEvent['action'], revision: number, reason: string, limit: number): void {
    this.events = [{ nodeId, action, timestamp: this.now(), revision, reason }, ...this.events].slice(0, limit);
  }

  prune(): void {
    const now = this.now();
    for (const [id, r] of this.nodes) if (r.expiresAt <= now) this.nodes.delete(id);
  }
}

/** Who a {@link MemoryLeaseStore} speaks for. */
export interface MemoryLeaseStoreConfig {
  readonly nodeId: string;
  readonly session: string;
  readonly priority: number;
  readonly strategy: 'race' | 'priority';
  readonly leaseTTL: number;
  readonly eventsLimit: number;
}

export class MemoryLeaseStore implements LeaseStore {
  readonly #server: MemoryLeaseServer;
  readonly #c: MemoryLeaseStoreConfig;
  #subscriber: ((notice: Notice) => void) | undefined;
  /** This node alone cannot reach the server (its operations fail; it hears no notices). */
  partitioned = false;

  constructor(server: MemoryLeaseServer, config: MemoryLeaseStoreConfig) {
    this.#server = server;
    this.#c = config;
  }

  open(handlers: LeaseStoreHandlers): void {
    this.#subscriber = (n) => {
      if (!this.partitioned) handlers.onNotice(n);
    };
    this.#server.subscribers.add(this.#subscriber);
    queueMicrotask(() => handlers.onConnected());
  }

  #exec<T>(fn: () => T): Promise<T> {
    if (this.partitioned) return Promise.reject(new FailoverError('ERR_FAILOVER_TRANSPORT', `${this.#c.nodeId} is partitioned from the memory store`));
    return this.#server.exec(fn);
  }

  #register(eligible: boolean): boolean {
    const s = this.#server;
    const c = this.#c;
    s.prune();
    const old = s.nodes.get(c.nodeId);
    const duplicate = old !== undefined && old.session !== c.session;
    const now = s.now();
    s.nodes.set(c.nodeId, { priority: c.priority, eligible, session: c.session, lastSeen: now, expiresAt: now + c.leaseTTL });
    return duplicate;
  }

  #better(): string | undefined {
    let best: string | undefined;
    let bestPriority = this.#c.priority;
    for (const [id, r] of this.#server.nodes) {
      if (id !== this.#c.nodeId && r.eligible && r.priority < bestPriority) {
        best = id;
        bestPriority = r.priority;
      }
    }
    return best;
  }

  #notice(type: Notice['type'], revision: number): void {
    this.#server.publish({ type, nodeId: this.#c.nodeId, revision, priority: this.#c.priority });
  }

  acquire(args: OpArgs): Promise<OpReply> {
    return this.#exec(() => {
      const s = this.#server;
      const c = this.#c;
      const duplicate = this.#register(args.eligible);
      const lease = s.current();
      if (lease !== undefined && lease.session !== c.session) {
        if (c.strategy === 'priority' && args.eligible && c.priority < lease.prio) this.#notice('preempt', lease.rev);
        return { kind: 'acquire', outcome: 'taken', leader: view(lease), duplicate };
      }
      if (lease === undefined && c.strategy === 'priority' && this.#better() !== undefined) {
        return { kind: 'acquire', outcome: 'deferred', leader: undefined, duplicate };
      }
      // As the script: no revision above 2^53 - 1, and none from a counter that is not an integer.
      const next = Math.max(s.revision + 1, args.knownRevision + 1);
      if (!Number.isSafeInteger(s.revision) || !(next <= MAX_REVISION)) {
        return { kind: 'acquire', outcome: 'exhausted', counter: String(s.revision), duplicate };
      }
      let from: AcquiredFrom;
      if (lease !== undefined) from = 'self';
      else {
        if (s.last === undefined) from = 'vacant';
        else if (s.last.state === 'released') from = 'released';
        else {
          from = 'expired';
          s.event(s.last.node, 'expired', s.last.rev, 'lease-expired', c.eventsLimit);
        }
      }
      s.revision = next;
      const rev = next;
      s.lease = { session: c.session, node: c.nodeId, rev, prio: c.priority, expiresAt: s.now() + c.leaseTTL };
      s.last = { node: c.nodeId, state: 'held', rev };
      s.event(c.nodeId, 'elected', rev, from, c.eventsLimit);
      this.#notice('elected', rev);
      return { kind: 'acquire', outcome: 'acquired', revision: rev, from, duplicate };
    });
  }

  refresh(args: OpArgs): Promise<OpReply> {
    return this.#exec(() => {
      const s = this.#server;
      const duplicate = this.#register(args.eligible);
      const lease = s.current();
      if (lease === undefined || lease.session !== this.#c.session) {
        return { kind: 'refresh', outcome: 'lost', leader: lease === undefined ? undefined : view(lease), duplicate };
      }
      lease.expiresAt = s.now() + this.#c.leaseTTL;
      return { kind: 'refresh', outcome: 'refreshed', betterNode: this.#c.strategy === 'priority' ? this.#better() : undefined, duplicate };
    });
  }

  observe(args: OpArgs): Promise<OpReply> {
    return this.#exec(() => {
      const duplicate = this.#register(args.eligible);
      const lease = this.#server.current();
      return { kind: 'observe', leader: lease === undefined ? undefined : view(lease), duplicate };
    });
  }

  release(reason: ReleaseReason, deregister: boolean, revision?: number): Promise<boolean> {
    return this.#exec(() => {
      const s = this.#server;
      const c = this.#c;
      const lease = s.current();
      let released = false;
      if (lease !== undefined && lease.session === c.session && (revision === undefined || lease.rev === revision)) {
        s.lease = undefined;
        s.last = { node: c.nodeId, state: 'released', rev: lease.rev };
        s.event(c.nodeId, 'released', lease.rev, reason, c.eventsLimit);
        released = true;
      }
      const own = s.nodes.get(c.nodeId);
      if (deregister && own?.session === c.session) s.nodes.delete(c.nodeId);
      else if ((reason === 'stepdown' || reason === 'start-failed') && own?.session === c.session) {
        s.nodes.set(c.nodeId, { ...own, eligible: false });
      }
      if (released && lease !== undefined) this.#notice('released', lease.rev);
      return released;
    });
  }

  liveNodes(): Promise<LiveNode[]> {
    return this.#exec(() => {
      const s = this.#server;
      s.prune();
      const leader = s.current()?.node;
      return [...s.nodes]
        .map(([nodeId, r]) => ({ nodeId, priority: r.priority, isLeader: nodeId === leader, lastSeen: r.lastSeen, eligible: r.eligible }))
        .sort((a, b) => a.priority - b.priority || a.nodeId.localeCompare(b.nodeId));
    });
  }

  events(limit: number): Promise<LeadershipEvent[]> {
    return this.#exec(() => this.#server.events.slice(0, limit));
  }

  async close(): Promise<void> {
    if (this.#subscriber !== undefined) this.#server.subscribers.delete(this.#subscriber);
    this.#subscriber = undefined;
  }
}

function view(lease: Lease): LeaderView {
  return { nodeId: lease.node, revision: lease.rev, priority: lease.prio };
}
