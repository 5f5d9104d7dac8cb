/**
 * The test cluster's own contract: options refused with a typed error naming them, a crashed
 * node that runs nothing of the application's any more, a shutdown that leaves nothing on the
 * clock, and waits that end with a clear error rather than hang.
 */
import { describe, expect, it } from 'vitest';
import { FailoverError, InvalidOptionError } from '../../../src/errors.js';
import { createTestCluster, type TestClusterOptions } from '../../../src/testing/index.js';

const TIMING = { heartbeatInterval: 100, heartbeatTimeout: 300 };

describe('createTestCluster', () => {
  it('refuses bad options, naming them', () => {
    const cases: Array<[unknown, string]> = [
      [{ nodes: [] }, 'nodes'],
      [{ nodes: ['a', 'a'] }, 'nodes'],
      [{ nodes: ['a', ''] }, 'nodes'],
      [{ nodes: ['a'], options: { endpoint: 'tcp://127.0.0.1:1' } }, 'options.endpoint'],
      [{ nodes: ['a'], options: { clock: {} } }, 'options.clock'],
      [{ nodes: [{ id: 'a', options: { fencing: true } }] }, 'nodes[a].options.fencing'],
      [{ nodes: ['a'], epoch: -1 }, 'epoch'],
      [{ nodes: ['a'], epoch: 2 ** 53 }, 'epoch'],
      [{ nodes: ['a'], latency: Number.NaN }, 'latency'],
      [{ nodes: ['a'], seed: 1.5 }, 'seed'],
      [{ nodes: ['a'], onWatcher: 'log' }, 'onWatcher'],
    ];
    for (const [options, option] of cases) {
      let error: unknown;
      try {
        createTestCluster(options as TestClusterOptions);
      } catch (e) {
        error = e;
      }
      expect(error, option).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).option, option).toBe(option);
    }
  });

  it('passes watcher options through to the watcher', () => {
    // The watcher validates them itself: a bad combination throws as it would in production.
    expect(() => createTestCluster({ nodes: ['a'], options: { heartbeatInterval: 500, heartbeatTimeout: 100 } })).toThrow(InvalidOptionError);
    const cluster = createTestCluster({ nodes: ['a', { id: 'b', options: { priority: 5, enabled: false } }], options: TIMING });
    expect(cluster.node('b').options).toMatchObject({ priority: 5, enabled: false, heartbeatInterval: 100, rehearsals: 0, fencing: false });
    expect(cluster.node('a').enabled).toBe(true);
  });

  it('refuses a foreign primary without a valid epoch or id', () => {
    const cluster = createTestCluster({ nodes: ['a'] });
    expect(() => cluster.injectPrimary({ epoch: 0 })).toThrow(/Invalid option `epoch`/);
    expect(() => cluster.injectPrimary({ epoch: 2, instanceId: 'a' })).toThrow(/Invalid option `instanceId`/);
    expect(() => cluster.injectPrimary({ epoch: 2, heartbeatInterval: 0 })).toThrow(/Invalid option `heartbeatInterval`/);
  });

  it('names an unknown node', () => {
    const cluster = createTestCluster({ nodes: ['a'] });
    expect(() => cluster.crash('z')).toThrow(/Invalid option `node`: expected one of the cluster's nodes \(a\), received "z"/);
  });
});

describe('a test cluster', () => {
  it('a crashed node runs no callback or listener again', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const cluster = createTestCluster({
      nodes: ['a', 'b'],
      options: TIMING,
      onPromote: ({ instanceId, reason }) => {
        seen.push(`promote ${instanceId}`);
        // b's promotion waits for the test; a's startup one does not.
        if (reason !== 'startup') return new Promise<void>((resolve) => (release = resolve));
      },
      onDemote: ({ instanceId }) => void seen.push(`demote ${instanceId}`),
    });
    await cluster.start();
    await cluster.advance(500);
    cluster.crash('a');
    await cluster.advance(10);
    expect(seen).toEqual(['promote a', 'promote b']);
    cluster.node('b').on('roleChanged', (c) => seen.push(`b listener ${c.to}`));
    // b dies while its onPromote runs: when that resolves, the dead watcher must not hear of it.
    cluster.crash('b');
    release();
    await cluster.advance(2000);
    expect(seen).toEqual(['promote a', 'promote b']);
    expect(cluster.state('b')).toBe('crashed');
    expect(cluster.primary()).toBeUndefined();
    await cluster.shutdown();
  });

  it('shutdown leaves nothing on the clock', async () => {
    const cluster = createTestCluster({ nodes: ['a', 'b', 'c'], options: TIMING });
    await cluster.start();
    cluster.stall('b', 10_000);
    cluster.silence('c', 10_000);
    cluster.injectPrimary({ epoch: 7 });
    await cluster.advance(200);
    await cluster.shutdown();
    expect(cluster.clock.pending).toBe(0);
    for (const id of cluster.ids) expect(cluster.node(id).role).toBe('stopped');
  });

  it('until() names what it waited for when it runs out', async () => {
    const cluster = createTestCluster({ nodes: ['a', 'b'], options: { ...TIMING, enabled: false } });
    await cluster.start();
    cluster.crash('a');
    const error = await cluster.until(() => cluster.primary() === 'b', { within: 1000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FailoverError);
    expect(error).toMatchObject({ code: 'ERR_FAILOVER_TIMEOUT' });
    expect((error as Error).message).toContain('a: crash');
    expect(cluster.now).toBe(1000);
    await cluster.shutdown();
  });

  it('settle() reports a callback loop instead of hanging', async () => {
    const cluster = createTestCluster({ nodes: ['a'], options: TIMING });
    await cluster.start();
    // Reschedules itself at the same instant for ever: time can never move.
    const spin = (): void => void cluster.clock.setTimer(spin, 0);
    spin();
    await expect(cluster.settle()).rejects.toMatchObject({ code: 'ERR_FAILOVER_TIMEOUT' });
  }, 60_000);

  it('start() rejects as the watcher does', async () => {
    const cluster = createTestCluster({ nodes: ['a', { id: 'b', options: { role: 'primary' } }], options: TIMING });
    await cluster.start('a');
    await expect(cluster.start('b')).rejects.toMatchObject({ code: 'ERR_FAILOVER_ENDPOINT_IN_USE' });
    expect(cluster.state('b')).toBe('stopped');
    await cluster.shutdown();
  });

  it('onWatcher sees every watcher, restarts included', async () => {
    const changes: string[] = [];
    const cluster = createTestCluster({
      nodes: ['a', 'b'],
      options: TIMING,
      onWatcher: (watcher, id) => watcher.on('roleChanged', (c) => changes.push(`${id} ${c.to}`)),
    });
    await cluster.start();
    await cluster.advance(100);
    cluster.crash('a');
    await cluster.advance(100);
    await cluster.restart('a');
    expect(changes).toEqual(['b secondary', 'a primary', 'b primary', 'a secondary']);
    await cluster.shutdown();
  });

  it('an epoch option seeds the shared state file', async () => {
    const cluster = createTestCluster({ nodes: ['a'], options: TIMING, epoch: 41 });
    await cluster.start();
    expect(cluster.node('a').epoch).toBe(42);
    expect(cluster.storedEpoch).toBe(42);
    await cluster.shutdown();
  });

  it('the timeline lists faults and role changes in order', async () => {
    const cluster = createTestCluster({ nodes: ['a', 'b'], options: TIMING });
    await cluster.start();
    await cluster.advance(100);
    cluster.crash('a');
    await cluster.advance(100);
    expect(cluster.timeline()).toBe(
      [
        '  0 ms  a: start',
        '  0 ms  b: start',
        '  0 ms  b: starting -> secondary (startup, epoch 0)',
        '  0 ms  a: starting -> primary (startup, epoch 1)',
        '100 ms  a: crash',
        '100 ms  b: secondary -> primary (disconnect, epoch 2)',
      ].join('\n'),
    );
    await cluster.shutdown();
  });
});

describe('metadata in the test cluster', () => {
  it('records primaryMetadataChanged of a follower', async () => {
    const cluster = createTestCluster({
      nodes: [
        { id: 'a', options: { metadata: { port: '7001' } } },
        { id: 'b', options: { metadata: { port: '7002' } } },
      ],
      options: TIMING,
    });
    try {
      await cluster.start();
      await cluster.until(() => cluster.events.some((e) => e.node === 'b' && e.type === 'primaryChanged'), { within: 1000 });
      const followed = cluster.events.find((e) => e.node === 'b' && e.type === 'primaryChanged');
      expect(followed?.event).toMatchObject({ instanceId: 'a', metadata: { port: '7001' } });
      cluster.node('a').setMetadata({ port: '8001' });
      await cluster.until(() => cluster.events.some((e) => e.type === 'primaryMetadataChanged'), { within: 1000 });
      expect(cluster.events.filter((e) => e.type === 'primaryMetadataChanged')).toMatchObject([
        { node: 'b', event: { instanceId: 'a', metadata: { port: '8001' } } },
      ]);
      // After a crash b leads and announces its own metadata.
      cluster.crash('a');
      await cluster.until(() => cluster.primary() === 'b', { within: 1000 });
      expect(cluster.node('b').status().metadata).toEqual({ port: '7002' });
    } finally {
      await cluster.shutdown();
    }
  });
});
