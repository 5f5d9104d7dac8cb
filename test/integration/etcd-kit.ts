/** The etcd server start and the relay for the tests: they live in harness/etcd-server.ts (the bench and chaos use them too). */
export { relay, startEtcd, type EtcdCluster, type EtcdMember, type Relay } from '../../harness/etcd-server.js';
