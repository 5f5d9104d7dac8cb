/**
 * failover-watch/etcd: leader election on etcd, etcd's own concurrency election (docs/ETCD.md).
 *
 * The code lives in `etcd/election.ts`, the driver around the pure machine in
 * `core/etcd-machine.ts`. Only this entry point loads etcd3.
 *
 * @example
 * import { EtcdElection } from 'failover-watch/etcd';
 * const election = new EtcdElection({ project: 'billing', hosts: ['http://10.0.0.1:2379'],
 *   onPromote: async ({ epoch, signal }) => { await work(epoch, signal); } });
 * await election.start();
 *
 * @module
 */
export * from './etcd/election.js';
