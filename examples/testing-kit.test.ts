/**
 * Testing your own failover logic with failover-watch/testing (docs/TESTING.md).
 *
 * The application here keeps a shared store that only the primary may write to. It opens the
 * store in `onPromote` with the epoch as fencing token (the store refuses writers of an older
 * term) and closes it in `onDemote`. These tests put that logic through a crash, a graceful
 * handover, a silent primary and a higher epoch, on a cluster of real watchers in memory: no
 * sockets, no files, no waiting. Run them with `npx vitest run examples/testing-kit.test.ts`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createTestCluster, type TestCluster, type TestDemoteContext, type TestPromoteContext } from 'failover-watch/testing';

// --- the application under test ------------------------------------------------------------------

/** A store that accepts writes only from the newest term (a fencing token, as many databases offer). */
class FencedStore {
  readonly writes: Array<{ by: string; epoch: number; value: string }> = [];
  #highestEpoch = 0;
  #openWriters = new Set<string>();
  /** Most writers open at the same time, ever. */
  maxOpenWriters = 0;

  open(by: string, epoch: number): void {
    if (epoch <= this.#highestEpoch) throw new Error(`epoch ${epoch} is stale (store is at ${this.#highestEpoch})`);
    this.#highestEpoch = epoch;
    this.#openWriters.add(by);
    this.maxOpenWriters = Math.max(this.maxOpenWriters, this.#openWriters.size);
  }

  close(by: string): void {
    this.#openWriters.delete(by);
  }

  /** A write carries the writer's epoch; an older term's write is refused. */
  write(by: string, epoch: number, value: string): boolean {
    if (epoch < this.#highestEpoch) return false;
    this.writes.push({ by, epoch, value });
    return true;
  }
}

/** The application's failover callbacks: open the store as primary, close it when the role ends. */
function storeCallbacks(store: FencedStore) {
  return {
    onPromote: ({ instanceId, epoch }: TestPromoteContext) => store.open(instanceId, epoch),
    onDemote: ({ instanceId }: TestDemoteContext) => store.close(instanceId),
  };
}

// --- the tests ----------------------------------------------------------------------------------

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = undefined;
});

/** Three nodes of the application, heartbeating every 100 ms, primary lost after 300 ms of silence. */
async function startApp(store: FencedStore): Promise<TestCluster> {
  cluster = createTestCluster({
    nodes: ['app-1', 'app-2', 'app-3'],
    options: { heartbeatInterval: 100, heartbeatTimeout: 300 },
    ...storeCallbacks(store),
  });
  await cluster.start();
  await cluster.advance(1000);
  return cluster;
}

describe('the store under failover', () => {
  it('a crashed primary\'s late write is refused', async () => {
    const store = new FencedStore();
    const c = await startApp(store);
    const old = c.node('app-1').epoch;
    c.crash('app-1');
    // The successor takes over in milliseconds of test time, with a higher epoch.
    const took = await c.until(() => c.primary() !== undefined, { within: 100 });
    expect(took).toBeLessThan(50);
    const successor = c.assertOnePrimary();
    expect(store.write(successor, c.node(successor).epoch, 'new')).toBe(true);
    // A write the dead primary had in flight (a paused process, a slow network) arrives now.
    expect(store.write('app-1', old, 'late')).toBe(false);
  });

  it('a graceful handover never has two writers open', async () => {
    const store = new FencedStore();
    const c = await startApp(store);
    await c.stop('app-1');
    await c.until(() => c.primary() === 'app-2', { within: 50 });
    await c.stop('app-2');
    await c.until(() => c.primary() === 'app-3', { within: 50 });
    expect(store.maxOpenWriters).toBe(1);
    expect(c.history.filter((h) => h.to === 'primary').map((h) => [h.node, h.reason])).toEqual([
      ['app-1', 'startup'],
      ['app-2', 'shutdown'],
      ['app-3', 'shutdown'],
    ]);
  });

  it('a silent primary is not replaced behind its back', async () => {
    const store = new FencedStore();
    const c = await startApp(store);
    // Its heartbeats stop for 2 s, but it still holds the endpoint: the others suspect it and
    // report it (primaryLost, willPromote false), and never open the store themselves.
    c.silence('app-1', 2000);
    await c.advance(3000);
    expect(c.assertOnePrimary()).toBe('app-1');
    expect(store.maxOpenWriters).toBe(1);
    expect(c.events.filter((e) => e.type === 'primaryLost').map((e) => e.node)).toEqual(['app-2', 'app-3']);
  });

  it('a higher epoch on the wire closes our store', async () => {
    const store = new FencedStore();
    const c = await startApp(store);
    // Another process holds the endpoint with epoch 50 (a peer restored from elsewhere): our
    // primary steps down at once and its onDemote closes the store.
    const foreign = c.injectPrimary({ epoch: 50 });
    await c.until(() => c.primary() === undefined, { within: 100 });
    expect(c.history.at(-1)).toMatchObject({ node: 'app-1', to: 'secondary', reason: 'higher-epoch' });
    // When it leaves, one of ours takes over above it: the store accepts that term.
    foreign.leave();
    await c.until(() => c.primary() !== undefined, { within: 100 });
    expect(c.node(c.assertOnePrimary()).epoch).toBe(51);
    expect(store.maxOpenWriters).toBe(1);
  });

  it('runs the same way every time', async () => {
    const runs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await startApp(new FencedStore());
      c.crash('app-1');
      c.stall('app-2', 500);
      await c.advance(2000);
      runs.push(c.timeline());
      await c.shutdown();
    }
    expect(runs[1]).toBe(runs[0]);
  });
});
