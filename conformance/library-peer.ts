/**
 * The reference peer: failover-watch's own Watcher behind the conformance kit's peer contract
 * (docs/CONFORMANCE.md). The kit's own tests pass it as `--peer`, and it is the template a
 * person writing a peer in another language copies:
 *
 *   node --import tsx conformance/library-peer.ts --endpoint {endpoint} --id {id} \
 *     --priority {priority} --workdir {workdir} \
 *     --heartbeat-interval {heartbeatInterval} --heartbeat-timeout {heartbeatTimeout}
 *
 * It writes one JSON object per line on stdout: `ready` once started, `role` on each role
 * change, `following` each time it follows a primary, `stopped` after SIGTERM's graceful
 * shutdown (which sends `instance.shutdown` when primary), then exits 0.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { Watcher } from '../src/index.js';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    id: { type: 'string' },
    priority: { type: 'string', default: '1' },
    workdir: { type: 'string' },
    'heartbeat-interval': { type: 'string', default: '1000' },
    'heartbeat-timeout': { type: 'string', default: '3000' },
  },
  strict: true,
});

const line = (event: string, data: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ event, ...data })}\n`);
};

const watcher = new Watcher({
  endpoint: values.endpoint ?? '',
  instanceId: values.id ?? '',
  workdir: values.workdir,
  enabled: true,
  priority: Number(values.priority),
  heartbeatInterval: Number(values['heartbeat-interval']),
  heartbeatTimeout: Number(values['heartbeat-timeout']),
  logger: {
    debug: () => {},
    info: (m: string) => process.stderr.write(`${m}\n`),
    warn: (m: string) => process.stderr.write(`${m}\n`),
    error: (m: string) => process.stderr.write(`${m}\n`),
  },
});
watcher.on('roleChanged', (c) => line('role', { role: c.to, epoch: c.epoch }));
watcher.on('primaryChanged', (e) => line('following', { id: e.instanceId, epoch: e.epoch }));

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void watcher.shutdown().then(
    () => {
      line('stopped');
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`shutdown failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

watcher.start().then(
  () => line('ready'),
  (error: unknown) => {
    process.stderr.write(`start failed: ${String(error)}\n`);
    process.exit(3);
  },
);
