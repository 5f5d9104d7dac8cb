/** A child-process etcd node for the crash tests: prints `primary EPOCH` once it leads. */
import { EtcdElection } from '../../src/etcd.js';

const election = new EtcdElection({
  project: process.env.FW_PROJECT!,
  instanceId: process.env.FW_ID!,
  hosts: process.env.FW_HOSTS!.split(','),
  leaseTTL: 2000,
  keepAliveInterval: 300,
  maxDrift: 1000,
  onPromote: ({ epoch }) => void process.stdout.write(`primary ${epoch}\n`),
});
await election.start();
setInterval(() => undefined, 1000);
