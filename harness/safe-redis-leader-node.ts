/**
 * A node of the npm package `ts-safe-redis-leader` in its own OS process, for the benchmark that
 * compares it with `failover-watch/redis` (`bench/scenarios/redis-compare.ts`). It speaks the
 * same IPC protocol as `redis-node.ts`, so `RedisNodeProcess` drives both: argv[2] is a JSON
 * `RedisNodeConfig` (`project` → the election key, `leaseTTL` → the package's `ttl`,
 * `tickInterval` → its `wait`, the standby's polling interval), and it reports `ready`, `start`
 * (the package's `elected` event: the moment this node took the key), `roleChanged`,
 * `closeCalled` and `closed`, each with `at` in ms since the Unix epoch (sub-ms).
 *
 * How the package works (v0.0.5): `elect()` tries `SET key id PX ttl NX` every `wait` ms; the
 * holder renews with a Lua "PEXPIRE if still mine" every `ttl / 2`; `shutdown()` deletes the key
 * if still its own (Lua). There is no notification: standbys find a free key at their next poll.
 *
 * @module
 */
import { Redis } from 'ioredis';
import { SafeRedisLeader } from 'ts-safe-redis-leader';
import type { RedisNodeCommand, RedisNodeConfig } from './redis-node.js';
import { hostNow } from './child-runtime.js';

const wall = hostNow; // the run's one host clock (child-runtime.ts)
const send = (type: string, data: Record<string, unknown> = {}): void => {
  if (process.connected) process.send?.({ type, at: wall(), ...data });
};

const config = JSON.parse(process.argv[2] ?? '{}') as RedisNodeConfig;
const ttl = config.leaseTTL ?? 1000;
const wait = config.tickInterval ?? 100;
let role: 'secondary' | 'primary' = 'secondary';
const changeRole = (to: 'secondary' | 'primary', reason: string): void => {
  if (to === role) return;
  const from = role;
  role = to;
  send('roleChanged', { from, to, reason, changedAt: wall() });
};

// The client options the package's README shows.
const client = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, autoResubscribe: false });
client.on('error', (error: Error) => send('warning', { message: `redis: ${error.message}` }));
// The package is typed against ioredis 4; the calls it makes (set, defineCommand, get) are the same in 6.
const leader = new SafeRedisLeader(client as never, ttl, wait, config.project);
leader.on('elected', () => {
  send('start', { reason: 'elected' });
  changeRole('primary', 'elected');
});
leader.on('demoted', () => changeRole('secondary', 'demoted'));
leader.on('error', (error?: unknown) => send('warning', { message: `safe-redis-leader: ${String(error)}` }));

let closing: Promise<void> | undefined;
function close(): Promise<void> {
  closing ??= (async () => {
    let error: string | undefined;
    try {
      await leader.shutdown();
      changeRole('secondary', 'shutdown');
    } catch (e) {
      error = String(e);
    }
    await client.quit().catch(() => client.disconnect());
    send('closed', { error });
  })();
  return closing;
}

process.on('message', (raw) => {
  const command = raw as RedisNodeCommand;
  if (command.cmd === 'close') {
    send('closeCalled');
    void close().then(() => process.disconnect?.());
  } else if (command.cmd === 'status') {
    send('status', { status: { role, nodeId: config.nodeId } });
  }
});
process.on('disconnect', () => {
  void close().finally(() => process.exit(0));
});

client
  .connect()
  .then(() => leader.elect())
  .then(
    () => send('ready', { role, pid: process.pid }),
    (error: unknown) => {
      send('runFailed', { message: String(error) });
      process.exitCode = 3;
      process.disconnect?.();
    },
  );
