/**
 * Application metadata on EtcdElection, against a real single etcd member started by the test:
 * stored in the campaign key's value, re-put by setMetadata under the same lease and revision.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EtcdElection } from '../../src/etcd.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { ElectionPrimaryChangedEvent, ElectionPrimaryMetadataChangedEvent } from '../../src/election/contract.js';
import { startEtcd, type EtcdCluster } from './etcd-kit.js';

let etcd: EtcdCluster;
let raw: Etcd3;
let seq = 0;

beforeAll(async () => {
  etcd = await startEtcd(1);
  raw = new Etcd3({ hosts: etcd.hosts });
});
afterAll(async () => {
  raw?.close();
  await etcd?.stop();
});

const node = (project: string, id: string, extra: Partial<ConstructorParameters<typeof EtcdElection>[0]> = {}): EtcdElection =>
  new EtcdElection({ project, instanceId: id, hosts: etcd.hosts, ...extra });

function next<K extends 'primaryChanged' | 'primaryMetadataChanged'>(
  e: EtcdElection,
  name: K,
  timeout: number,
): Promise<K extends 'primaryChanged' ? ElectionPrimaryChangedEvent : ElectionPrimaryMetadataChangedEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${e.instanceId}: no ${name} within ${timeout} ms`)), timeout);
    e.once(name, ((event: never) => {
      clearTimeout(timer);
      resolve(event);
    }) as never);
  });
}

describe('etcd metadata', () => {
  it('invalid metadata throws naming the key', async () => {
    expect(() => node('pbad', 'a', { metadata: { 'no space': 'x' } })).toThrow(InvalidOptionError);
    expect(() => node('pbad', 'a', { metadata: { port: 7 as unknown as string } })).toThrow(/metadata\.port/);
    const a = node('pbad', 'a', { metadata: { port: '1' } });
    expect(() => a.setMetadata({ ['x'.repeat(65)]: 'v' })).toThrow(InvalidOptionError);
    expect(a.metadata).toEqual({ port: '1' });
    await a.shutdown();
  });

  it('follower gets the leader metadata everywhere', async () => {
    const project = `m${++seq}`;
    const a = node(project, 'a', { metadata: { port: '7001' } });
    await a.start();
    const b = node(project, 'b', { metadata: { port: '7002' } });
    const changed = next(b, 'primaryChanged', 5000);
    await b.start();
    const event = await changed;
    expect(event).toMatchObject({ instanceId: 'a', epoch: a.epoch, metadata: { port: '7001' } });
    expect(b.status().etcd.leaderMetadata).toEqual({ port: '7001' });
    expect(b.status().etcd.metadata).toEqual({ port: '7002' });
    expect(a.status().etcd.leaderMetadata).toBeUndefined();
    const nodes = await b.liveNodes();
    expect(nodes.map((n) => [n.instanceId, n.metadata])).toEqual([
      ['a', { port: '7001' }],
      ['b', { port: '7002' }],
    ]);
    await b.shutdown();
    await a.shutdown();
  });

  it('setMetadata keeps the epoch and the line order', async () => {
    const project = `m${++seq}`;
    const a = node(project, 'a', { metadata: { port: '7001' } });
    await a.start();
    const b = node(project, 'b');
    await b.start();
    const epoch = a.epoch;
    const key = a.status().etcd.key!;
    const before = await raw.get(key).exec();
    const metaChanged = next(b, 'primaryMetadataChanged', 5000);
    a.setMetadata({ port: '8001', zone: 'z1' });
    const event = await metaChanged;
    expect(event).toMatchObject({ instanceId: 'a', epoch, metadata: { port: '8001', zone: 'z1' } });
    const after = await raw.get(key).exec();
    expect(after.kvs[0]?.create_revision).toBe(before.kvs[0]?.create_revision);
    expect(after.kvs[0]?.lease).toBe(before.kvs[0]?.lease);
    expect(Number(after.kvs[0]?.mod_revision)).toBeGreaterThan(Number(before.kvs[0]?.mod_revision));
    expect(a.role).toBe('primary');
    expect(a.epoch).toBe(epoch);
    expect(b.status().primary).toEqual({ instanceId: 'a', epoch });
    expect((await b.liveNodes()).map((n) => n.instanceId)).toEqual(['a', 'b']);
    // A follower's own change is re-put too and shows in the line.
    b.setMetadata({ port: '8002' });
    await vi.waitFor(async () => expect((await a.liveNodes())[1]?.metadata).toEqual({ port: '8002' }), { timeout: 5000, interval: 50 });
    await b.shutdown();
    await a.shutdown();
  });

  it('malformed stored metadata is dropped and counted', async () => {
    const project = `m${++seq}`;
    const a = node(project, 'a', { metadata: { port: '7001' } });
    await a.start();
    const b = node(project, 'b');
    await b.start();
    const { key, leaseId } = a.status().etcd;
    const dropped = vi.fn();
    b.on('primaryMetadataChanged', dropped);
    // Someone writes metadata that breaks the rules into the leader's key (same lease).
    const bad = JSON.stringify({ nodeId: 'a', priority: 1, metadata: { 'bad key': 'x', port: 7 } });
    await raw.put(key!).value(bad).lease(leaseId!).exec();
    await vi.waitFor(() => expect(b.status().etcd.metadataDropped).toBe(1), { timeout: 5000, interval: 20 });
    expect(b.status().etcd.leaderMetadata).toEqual({ port: '7001' });
    expect(b.status().primary?.instanceId).toBe('a');
    expect(a.role).toBe('primary');
    expect((await b.liveNodes()).map((n) => n.instanceId)).toEqual(['a', 'b']);
    // The next good write is news again.
    const metaChanged = next(b, 'primaryMetadataChanged', 5000);
    a.setMetadata({ port: '9001' });
    expect((await metaChanged).metadata).toEqual({ port: '9001' });
    expect(dropped).toHaveBeenCalledTimes(1);
    expect(b.status().etcd.metadataDropped).toBe(1);
    await b.shutdown();
    await a.shutdown();
  });

  it('the new leader announces its metadata on takeover', async () => {
    const project = `m${++seq}`;
    const a = node(project, 'a', { metadata: { port: '7001' } });
    await a.start();
    const b = node(project, 'b', { metadata: { port: '7002' } });
    await b.start();
    const c = node(project, 'c');
    await c.start();
    const changed = new Promise<ElectionPrimaryChangedEvent>((resolve) => c.on('primaryChanged', (e) => e.instanceId === 'b' && resolve(e)));
    await a.shutdown();
    const event = await Promise.race([changed, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no takeover')), 5000).unref())]);
    expect(event.metadata).toEqual({ port: '7002' });
    expect(c.status().etcd.leaderMetadata).toEqual({ port: '7002' });
    expect(b.status().etcd.leaderMetadata).toBeUndefined();
    await c.shutdown();
    await b.shutdown();
  });
});
