/**
 * An etcd or PostgreSQL election node in its own OS process, driven by a parent over the IPC
 * channel with the protocol of `redis-node.ts` (so `RedisNodeProcess` in `redis-cluster.ts` runs
 * it: pass this file as its `script`). Used by the lease-backends benchmark and the lease chaos
 * run; not part of the library.
 *
 * argv[2] is a JSON {@link LeaseNodeConfig}. Every event goes to the parent as `{ type, at, ...data }`
 * with `at` on the run's one host clock (`hostNow` in child-runtime.ts):
 * `ready`, `promote` (from `onPromote`, `promoteAt` = the instant it was called), `abort` (the
 * term's signal aborted), `demote`, `roleChanged` (`changedAt`: the instant the term began or
 * ended for the application, i.e. `onPromote` was called or the term's signal aborted, when that
 * came first; else the instant the listener ran. Listeners run asynchronously, on a loaded host
 * up to ~150 ms after the change: stamping them late made a term look longer than it was),
 * `primaryChanged`, `closeCalled`, `closed`, `stepDownCalled`, `enabledSet`, `startFailed`.
 *
 * @module
 */
import type { Election, ElectionCallbacks } from '../src/election/contract.js';
import { hostNow } from './child-runtime.js';
import type { RedisNodeConfig } from './redis-node.js';

/**
 * A node's configuration. `redisUrl` (the field name of the Redis harness, whose process class
 * runs this node too) carries the server: the PostgreSQL connection string, or etcd's client URLs
 * separated by commas.
 */
export interface LeaseNodeConfig extends RedisNodeConfig {
  readonly backend: 'etcd' | 'postgres';
  /** Further options of the election (timings), passed as they are. */
  readonly options?: Readonly<Record<string, number | boolean>>;
  /** Whether the node may lead from the start. @default true */
  readonly enabled?: boolean;
}

export type LeaseNodeCommand =
  | { readonly cmd: 'close' }
  | { readonly cmd: 'stepDown' }
  | { readonly cmd: 'setEnabled'; readonly value: boolean };

const send = (type: string, data: Record<string, unknown> = {}): void => {
  if (process.connected) process.send?.({ type, at: hostNow(), ...data });
};

const config = JSON.parse(process.argv[2] ?? '{}') as LeaseNodeConfig;
const promotedAt = new Map<number, number>();
const abortedAt = new Map<number, number>();
const callbacks: ElectionCallbacks = {
  onPromote: ({ epoch, reason, signal }) => {
    const at = hostNow();
    promotedAt.set(epoch, at);
    send('promote', { epoch, reason, promoteAt: at });
    signal.addEventListener(
      'abort',
      () => {
        abortedAt.set(epoch, hostNow());
        send('abort', { epoch });
      },
      { once: true },
    );
  },
  onDemote: ({ epoch, reason }) => send('demote', { epoch, reason }),
};

async function create(): Promise<Election> {
  const common = { project: config.project, instanceId: config.nodeId, enabled: config.enabled ?? true, ...callbacks, ...config.options };
  if (config.backend === 'etcd') {
    const { EtcdElection } = await import('../src/etcd.js');
    return new EtcdElection({ ...common, hosts: config.redisUrl.split(','), ...(config.nodePriority === undefined ? {} : { priority: config.nodePriority }) });
  }
  const { PostgresElection } = await import('../src/postgres.js');
  return new PostgresElection({ ...common, connectionString: config.redisUrl });
}

let election: Election | undefined;
let closing: Promise<void> | undefined;

function close(): Promise<void> {
  closing ??= (async () => {
    let error: string | undefined;
    try {
      await election?.shutdown();
    } catch (e) {
      error = String(e);
    }
    send('closed', { error });
  })();
  return closing;
}

process.on('message', (raw) => {
  const command = raw as LeaseNodeCommand;
  switch (command.cmd) {
    case 'close':
      send('closeCalled');
      void close().finally(() => process.exit(0));
      return;
    case 'stepDown':
      send('stepDownCalled');
      election?.stepDown();
      return;
    case 'setEnabled':
      election?.setEnabled(command.value);
      send('enabledSet', { value: command.value });
      return;
  }
});
// The parent going away ends this process (never leave orphans behind).
process.on('disconnect', () => void close().finally(() => process.exit(0)));

try {
  election = await create();
  election.on('roleChanged', (c) => {
    const first = c.to === 'primary' ? promotedAt.get(c.epoch) : abortedAt.get(c.epoch);
    const changedAt = Math.min(first ?? Infinity, hostNow());
    send('roleChanged', { from: c.from, to: c.to, epoch: c.epoch, reason: c.reason, changedAt });
  });
  election.on('primaryChanged', (e) => send('primaryChanged', { instanceId: e.instanceId, epoch: e.epoch }));
  await election.start();
  send('ready', { role: election.role, epoch: election.epoch, pid: process.pid });
} catch (error) {
  send('startFailed', { code: (error as { code?: string }).code, message: String(error) });
  process.exitCode = 3;
  process.disconnect?.();
}
