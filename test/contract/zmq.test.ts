/**
 * The election contract on the ZeroMQ Watcher: real sockets on a unique ipc endpoint and a
 * private work directory per test, nodes in this process.
 */
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { Watcher } from '../../src/index.js';
import { describeElectionBehaviour } from './election-behaviour.js';

describeElectionBehaviour({
  name: 'zmq',
  // A graceful handover is one farewell message and a bind: milliseconds, with slack for load.
  handoverBoundMs: 1500,
  async setup() {
    const work = tempWorkdir('fw-contract-');
    const endpoint = uniqueIpc('fw-contract');
    return {
      node: (o) =>
        new Watcher({
          endpoint,
          workdir: work.path,
          instanceId: o.instanceId,
          enabled: true,
          heartbeatInterval: 50,
          heartbeatTimeout: 500,
          retryInterval: 200,
          ...(o.priority !== undefined ? { priority: o.priority } : {}),
          ...(o.onPromote !== undefined ? { onPromote: o.onPromote } : {}),
          ...(o.onDemote !== undefined ? { onDemote: o.onDemote } : {}),
        }),
      teardown: async () => work.cleanup(),
    };
  },
});
