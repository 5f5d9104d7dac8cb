/**
 * The behaviour every election backend shares, written against the contract
 * (`src/election/contract.ts`) alone: a backend's run file hands {@link describeElectionBehaviour}
 * a harness that makes nodes of one fresh cluster per test, and the same tests run on it.
 *
 * No sleep-and-hope: every wait is for an event or a role, bounded by a timeout; "never
 * promotes" is shown by another node promoting first.
 *
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  Election,
  ElectionCallbacks,
  ElectionNode,
  ElectionPromoteContext,
  ElectionDemoteContext,
  ElectionPromotionFailedEvent,
  ElectionRoleChange,
} from '../../src/election/contract.js';

export interface ElectionNodeOptions {
  readonly instanceId: string;
  readonly priority?: number;
  readonly onPromote?: ElectionCallbacks['onPromote'];
  readonly onDemote?: ElectionCallbacks['onDemote'];
}

export interface ElectionCluster {
  /** A node of this cluster, not started. Nodes made here share the cluster. */
  node(options: ElectionNodeOptions): Election;
  /** Kills the node's process or connection as a crash would (no goodbye), when the backend can. */
  crash?(node: Election): Promise<void>;
  /** Ends what setup() started (servers, directories); the suite has shut its nodes down before. */
  teardown(): Promise<void>;
}

export interface ElectionHarness {
  /** The backend, as `status().backend` names it: 'zmq', 'redis', later 'etcd', 'postgres'. */
  readonly name: string;
  /** A fresh cluster for one test: nodes made by `node()` share it. */
  setup(): Promise<ElectionCluster>;
  /** Upper bound for a takeover after a graceful shutdown / stepDown, in ms. */
  readonly handoverBoundMs: number;
  /** Upper bound for a takeover after `crash()`, in ms (needed when the cluster has `crash`). */
  readonly crashBoundMs?: number;
  /** How long a node may take to start (first role settled), in ms. @default 10000 */
  readonly startBoundMs?: number;
}

/** Resolves with the first role change of `node` matching `pred`, or rejects after `timeout` ms. */
export function nextChange(
  node: Election,
  pred: (c: ElectionRoleChange) => boolean,
  timeout: number,
  what = 'a matching roleChanged',
): Promise<ElectionRoleChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      node.off('roleChanged', on);
      reject(new Error(`${node.instanceId}: no ${what} within ${timeout} ms (role ${node.role})`));
    }, timeout);
    const on = (c: ElectionRoleChange): void => {
      if (!pred(c)) return;
      clearTimeout(timer);
      node.off('roleChanged', on);
      resolve(c);
    };
    node.on('roleChanged', on);
  });
}

/** Resolves with the first of `nodes` to become primary (at once if one is). */
function firstPrimary(nodes: readonly Election[], timeout: number): Promise<Election> {
  const now = nodes.find((n) => n.role === 'primary');
  if (now !== undefined) return Promise.resolve(now);
  return Promise.any(nodes.map((n) => nextChange(n, (c) => c.to === 'primary', timeout, 'promotion').then(() => n)));
}

const toPrimary = (c: ElectionRoleChange): boolean => c.to === 'primary';

/** Records a node's role changes and callbacks from its creation on. */
interface Recorder {
  readonly changes: ElectionRoleChange[];
  readonly promotes: ElectionPromoteContext[];
  readonly demotes: ElectionDemoteContext[];
  readonly failures: ElectionPromotionFailedEvent[];
}

export function describeElectionBehaviour(harness: ElectionHarness): void {
  const bound = harness.handoverBoundMs;
  const startBound = harness.startBoundMs ?? 10_000;

  describe(`election contract: ${harness.name}`, () => {
    let cluster: ElectionCluster;
    let made: Election[] = [];
    let records: Map<Election, Recorder>;
    let seq = 0;

    beforeEach(async () => {
      cluster = await harness.setup();
      made = [];
      records = new Map();
    });
    afterEach(async () => {
      await Promise.all(made.map((n) => n.shutdown().catch(() => undefined)));
      await cluster.teardown();
    });

    /** A recorded node; `promote` runs inside the recorded onPromote. */
    function node(
      name: string,
      extra: { priority?: number; promote?: (ctx: ElectionPromoteContext) => void | Promise<void> } = {},
    ): Election {
      const rec: Recorder = { changes: [], promotes: [], demotes: [], failures: [] };
      const n = cluster.node({
        instanceId: `${name}-${process.pid}-${++seq}`,
        ...(extra.priority !== undefined ? { priority: extra.priority } : {}),
        onPromote: async (ctx) => {
          rec.promotes.push(ctx);
          await extra.promote?.(ctx);
        },
        onDemote: (ctx) => void rec.demotes.push(ctx),
      });
      n.on('roleChanged', (c) => void rec.changes.push(c));
      n.on('promotionFailed', (e) => void rec.failures.push(e));
      made.push(n);
      records.set(n, rec);
      return n;
    }
    const rec = (n: Election): Recorder => records.get(n)!;
    const primaries = (): Election[] => made.filter((n) => n.role === 'primary');

    /**
     * Starts `a` (which becomes primary) and then the others (secondaries), each until it follows
     * `a`: a secondary whose start() resolved may not hear the primary yet (a ZeroMQ subscriber
     * still connecting), and one that misses a farewell races the stepped-down node at silence.
     */
    async function startInOrder(...nodes: Election[]): Promise<void> {
      const [first, ...rest] = nodes;
      if (first === undefined) return;
      await first.start();
      for (const n of rest) {
        const follows = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${n.instanceId} did not follow ${first.instanceId} within ${startBound} ms`)), startBound);
          const check = (): void => {
            if (n.status().primary?.instanceId !== first.instanceId) return;
            clearTimeout(timer);
            n.off('primaryChanged', check);
            resolve();
          };
          n.on('primaryChanged', check);
          queueMicrotask(check);
        });
        try {
          await n.start();
        } catch (error) {
          follows.catch(() => undefined);
          throw error;
        }
        await follows;
      }
    }

    it('exactly one of 3 nodes started together is primary', async () => {
      const nodes = [node('a'), node('b'), node('c')];
      await Promise.all(nodes.map((n) => n.start()));
      const p = await firstPrimary(nodes, startBound);
      expect(primaries()).toEqual([p]);
      expect(nodes.filter((n) => n.role === 'secondary')).toHaveLength(2);
    });

    it('the epoch is a safe integer >= 1 and grows each term', async () => {
      const a = node('a');
      const b = node('b');
      await startInOrder(a, b);
      expect(a.role).toBe('primary');
      const first = a.epoch;
      expect(Number.isSafeInteger(first) && first >= 1).toBe(true);
      const taken = nextChange(b, toPrimary, bound, 'promotion');
      await a.shutdown();
      const change = await taken;
      expect(Number.isSafeInteger(b.epoch)).toBe(true);
      expect(b.epoch).toBeGreaterThan(first);
      expect(change.epoch).toBe(b.epoch);
    });

    it('onPromote gets epoch, reason and a live signal', async () => {
      const a = node('a');
      await a.start();
      expect(a.role).toBe('primary');
      const [ctx] = rec(a).promotes;
      expect(ctx).toBeDefined();
      expect(ctx!.epoch).toBe(a.epoch);
      expect(typeof ctx!.reason).toBe('string');
      expect(ctx!.reason.length).toBeGreaterThan(0);
      expect(ctx!.signal).toBeInstanceOf(AbortSignal);
      expect(ctx!.signal.aborted).toBe(false);
    });

    it('the signal aborts and onDemote runs once at term end', async () => {
      const a = node('a');
      await a.start();
      const ctx = rec(a).promotes[0]!;
      await a.shutdown();
      expect(ctx.signal.aborted).toBe(true);
      expect(rec(a).demotes).toHaveLength(1);
      expect(rec(a).demotes[0]).toMatchObject({ epoch: ctx.epoch, reason: 'shutdown' });
    });

    it('shutdown hands over in bound and is idempotent', async () => {
      const a = node('a');
      const b = node('b');
      await startInOrder(a, b);
      expect(a.role).toBe('primary');
      const taken = nextChange(b, toPrimary, bound, `promotion within ${bound} ms`);
      const t0 = performance.now();
      const first = a.shutdown();
      const second = a.shutdown();
      await Promise.all([first, second, taken]);
      expect(performance.now() - t0).toBeLessThan(bound);
      await a.shutdown();
      expect(a.role).toBe('stopped');
      expect(b.role).toBe('primary');
      expect(rec(a).demotes).toHaveLength(1);
    });

    it('stepDown hands over and the node stays secondary', async () => {
      const a = node('a');
      const b = node('b');
      await startInOrder(a, b);
      const ctx = rec(a).promotes[0]!;
      const taken = nextChange(b, toPrimary, bound, `promotion within ${bound} ms`);
      const left = nextChange(a, (c) => c.from === 'primary', bound, 'demotion');
      a.stepDown();
      const [, demotion] = await Promise.all([taken, left]);
      expect(demotion).toMatchObject({ to: 'secondary', reason: 'stepdown', epoch: ctx.epoch });
      expect(ctx.signal.aborted).toBe(true);
      expect(rec(a).demotes).toEqual([{ epoch: ctx.epoch, reason: 'stepdown' }]);
      expect(a.role).toBe('secondary');
      expect(b.epoch).toBeGreaterThan(ctx.epoch);
      expect(primaries()).toEqual([b]);
    });

    it('stepDown on a secondary has no effect', async () => {
      const a = node('a');
      const b = node('b');
      await startInOrder(a, b);
      b.stepDown();
      expect(b.role).toBe('secondary');
      // Still one primary, and it is a: a's next handover goes to b as usual.
      const taken = nextChange(b, toPrimary, bound, 'promotion');
      await a.shutdown();
      await taken;
      expect(rec(b).changes.map((c) => c.to)).toEqual(['secondary', 'primary']);
    });

    it('a disabled node never promotes; re-enabled it does', async () => {
      const a = node('a');
      const b = node('b');
      const c = node('c');
      b.setEnabled(false);
      await startInOrder(a, b, c);
      expect(b.enabled).toBe(false);
      expect(b.status().enabled).toBe(false);
      const cTakes = nextChange(c, toPrimary, bound, 'promotion');
      await a.shutdown();
      await cTakes;
      expect(rec(b).changes.some(toPrimary)).toBe(false);
      expect(b.role).toBe('secondary');
      b.setEnabled(true);
      expect(b.enabled).toBe(true);
      const bTakes = nextChange(b, toPrimary, bound, 'promotion');
      await c.shutdown();
      await bTakes;
      expect(b.role).toBe('primary');
    });

    it('roleChanged and roleChanges() agree; it ends at stopped', async () => {
      const a = node('a');
      const b = node('b');
      const iterated: ElectionRoleChange[] = [];
      const iterating = (async () => {
        for await (const c of a.roleChanges()) iterated.push(c);
      })();
      await startInOrder(a, b);
      const taken = nextChange(b, toPrimary, bound, 'promotion');
      a.stepDown();
      await taken;
      await a.shutdown();
      await iterating;
      const emitted = rec(a).changes;
      expect(iterated).toEqual(emitted);
      expect(emitted.map((c) => `${c.from}>${c.to}`)).toEqual(['starting>primary', 'primary>secondary', 'secondary>stopped']);
      for (const c of emitted) {
        expect(c.instanceId).toBe(a.instanceId);
        expect(typeof c.reason).toBe('string');
        expect(Number.isFinite(c.at)).toBe(true);
      }
      expect((await a.roleChanges().next()).done).toBe(true);
    });

    it('status() has the core fields and the backend name', async () => {
      const a = node('a');
      const b = node('b');
      await startInOrder(a, b);
      for (const n of [a, b]) {
        const s = n.status();
        expect(s.backend).toBe(harness.name);
        expect(n.backend).toBe(harness.name);
        expect(s.instanceId).toBe(n.instanceId);
        expect(s.role).toBe(n.role);
        expect(typeof s.phase).toBe('string');
        expect(s.epoch).toBe(n.epoch);
        expect(s.enabled).toBe(true);
        expect(typeof s.primarySuspected).toBe('boolean');
        for (const k of ['promotions', 'demotions', 'failedPromotions', 'notificationsDropped', 'listenerErrors'] as const) {
          expect(Number.isInteger(s[k]), k).toBe(true);
        }
        expect(() => JSON.stringify(s)).not.toThrow();
      }
      expect(a.status()).toMatchObject({ role: 'primary', promotions: 1, primary: { instanceId: a.instanceId, epoch: a.epoch } });
      expect(b.status()).toMatchObject({ role: 'secondary', promotions: 0 });
      const demoted = nextChange(a, (c) => c.to === 'stopped', bound, 'stop');
      await a.shutdown();
      await demoted;
      expect(a.status()).toMatchObject({ role: 'stopped', demotions: 1 });
    });

    it('liveNodes() lists nodes in one shape, self once', async () => {
      const a = node('a', { priority: 1 });
      const b = node('b', { priority: 2 });
      await startInOrder(a, b);
      for (const n of [a, b]) {
        const nodes: ElectionNode[] = await n.liveNodes();
        expect(Array.isArray(nodes)).toBe(true);
        for (const x of nodes) {
          // `metadata` is optional: a primary's entry carries it where the backend announces it.
          const keys = Object.keys(x).filter((k) => k !== 'metadata').sort();
          expect(keys).toEqual(['eligible', 'epoch', 'instanceId', 'lastSeenAt', 'priority', 'role', 'self']);
          if (x.metadata !== undefined) expect(typeof x.metadata).toBe('object');
          expect(['primary', 'secondary']).toContain(x.role);
          expect(Number.isFinite(x.lastSeenAt)).toBe(true);
          expect(typeof x.eligible).toBe('boolean');
          if (x.role === 'secondary') expect(x.epoch).toBeUndefined();
        }
        const self = nodes.filter((x) => x.self);
        expect(self).toHaveLength(1);
        expect(self[0]).toMatchObject({ instanceId: n.instanceId, role: n.role });
      }
      const own = (await a.liveNodes()).find((x) => x.self);
      expect(own).toMatchObject({ role: 'primary', epoch: a.epoch, priority: 1, eligible: true });
    });

    it('health() answers ok, status and reason', async () => {
      const a = node('a');
      const b = node('b');
      await startInOrder(a, b);
      for (const n of [a, b]) {
        const h = n.health();
        expect(typeof h.ok).toBe('boolean');
        expect(h.status).toBe(h.ok ? 200 : 503);
        expect(typeof h.reason).toBe('string');
      }
    });

    it('asyncDispose shuts the node down and hands over', async () => {
      const a = node('a');
      const b = node('b');
      await startInOrder(a, b);
      const taken = nextChange(b, toPrimary, bound, 'promotion');
      await a[Symbol.asyncDispose]();
      expect(a.role).toBe('stopped');
      await taken;
      expect(rec(a).demotes).toHaveLength(1);
    });

    it('an onPromote that throws: promotionFailed, stays secondary', async () => {
      const a = node('a');
      const b = node('b', {
        promote: () => {
          throw new Error('not today');
        },
      });
      const c = node('c');
      await startInOrder(a, b);
      const failed = new Promise<ElectionPromotionFailedEvent>((resolve) => b.once('promotionFailed', resolve));
      await a.shutdown();
      const event = await Promise.race([
        failed,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no promotionFailed')), bound * 4)),
      ]);
      expect(event.error).toContain('not today');
      expect(Number.isSafeInteger(event.epoch) && event.epoch >= 1).toBe(true);
      expect(typeof event.reason).toBe('string');
      expect(event.retryInMs).toBeGreaterThanOrEqual(0);
      expect(b.role).toBe('secondary');
      expect(rec(b).demotes).toHaveLength(0);
      expect(b.status().failedPromotions).toBeGreaterThanOrEqual(1);
      // A healthy node takes the role the failing one could not hold.
      const cTakes = nextChange(c, toPrimary, startBound, 'promotion');
      await c.start();
      if (c.role !== 'primary') await cTakes;
      expect(c.role).toBe('primary');
    });

    it('a crashed primary is replaced within the crash bound', async (ctx) => {
      if (cluster.crash === undefined || harness.crashBoundMs === undefined) {
        ctx.skip();
        return;
      }
      const a = node('a');
      const b = node('b');
      await startInOrder(a, b);
      const epoch = a.epoch;
      const taken = nextChange(b, toPrimary, harness.crashBoundMs, 'promotion after the crash');
      await cluster.crash(a);
      const change = await taken;
      expect(change.epoch).toBeGreaterThan(epoch);
    });
  });
}
