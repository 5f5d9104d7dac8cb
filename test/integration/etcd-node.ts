/** A child-process etcd node for the crash tests: prints `primary EPOCH` once it leads. */
import { EtcdElection } from '../../src/etcd.js';

const election = new EtcdElection({
  project: process.env.FW_PROJECT!,
  instanceId: process.env.FW_ID!,
  hosts: process.env.FW_HOSTS!.split(','),
  leaseTTL: 2000,
  keepAliveInterval: 300,
  maxDrift: 1000,
  onPromote: ({ epoch, signal }) => {
    signal.addEventListener('abort', () => void process.stdout.write(`aborted ${epoch}\n`));
    process.stdout.write(`primary ${epoch}\n`);
  },
});
election.on('roleChanged', (c) => {
  if (c.to === 'secondary' && c.from === 'primary') process.stdout.write(`demoted ${c.reason}\n`);
});
await election.start();
setInterval(() => undefined, 1000);
