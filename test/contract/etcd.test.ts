/**
 * The election contract on EtcdElection: one real single-member etcd for the file (started here,
 * on free loopback ports), a fresh project (key prefix) per test, nodes in this process. Each
 * node reaches etcd through its own TCP relay, so `crash()` cuts a node off as its process
 * dying would: no revoke, no resign, its keepalives stop and etcd expires its lease.
 */
import { afterAll, beforeAll } from 'vitest';
import { EtcdElection } from '../../src/etcd.js';
import type { Election } from '../../src/election/contract.js';
import { relay, startEtcd, type EtcdCluster, type Relay } from '../integration/etcd-kit.js';
import { describeElectionBehaviour } from './election-behaviour.js';

let etcd: EtcdCluster;
let seq = 0;
beforeAll(async () => {
  etcd = await startEtcd(1);
});
afterAll(async () => {
  await etcd?.stop();
});

const TIMING = { leaseTTL: 2000, keepAliveInterval: 250, maxDrift: 1500 } as const;

describeElectionBehaviour({
  name: 'etcd',
  // A graceful handover is a delete (or a revoke) and a watch event: milliseconds.
  handoverBoundMs: 1500,
  // The lease TTL, one keepalive interval, etcd's expiry check (every 500 ms), and slack for load.
  crashBoundMs: TIMING.leaseTTL + TIMING.keepAliveInterval + 500 + 1000,
  async setup() {
    const project = `contract${++seq}`;
    const relays = new Map<Election, Relay>();
    const pending: Relay[] = [];
    // Relays are made ahead: node() is synchronous.
    for (let i = 0; i < 4; i++) pending.push(await relay(etcd.hosts[0]!));
    return {
      node: (o) => {
        const r = pending.shift();
        if (r === undefined) throw new Error('more nodes than relays made ahead');
        const n = new EtcdElection({
          ...TIMING,
          project,
          hosts: [r.url],
          instanceId: o.instanceId,
          ...(o.priority !== undefined ? { priority: o.priority } : {}),
          ...(o.onPromote !== undefined ? { onPromote: o.onPromote } : {}),
          ...(o.onDemote !== undefined ? { onDemote: o.onDemote } : {}),
        });
        relays.set(n, r);
        return n;
      },
      crash: async (n) => relays.get(n)!.cut(),
      teardown: async () => {
        await Promise.all([...relays.values(), ...pending].map((r) => r.cut()));
      },
    };
  },
});
