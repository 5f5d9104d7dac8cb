/**
 * A "Redis" that answers garbage: the leader loses its role safely (drift step-down), nothing
 * throws out of the election, and once the real server is back the election resumes.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { run, type Cluster, type RoleChange } from '../../src/redis.js';

const skip = redisSkipReason();
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A TCP server on `port` that answers every request with protocol garbage. */
async function garbageServer(port: number): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let n = 0;
    socket.on('data', () => {
      const replies = ['%%%garbage\r\n', ':notanumber\r\n', '$-7\r\n', '*3\r\n+x\r\n', '\u0000\u00ff\u0013\r\n', '-ERR nope\r\n'];
      socket.write(replies[n++ % replies.length] as string);
    });
  });
  server.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

function nextChange(cluster: Cluster, to: string, timeout: number): Promise<RoleChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no change to ${to} within ${timeout} ms (role ${cluster.role})`)), timeout);
    const listener = (c: RoleChange): void => {
      if (c.to !== to) return;
      clearTimeout(timer);
      cluster.off('roleChanged', listener);
      resolve(c);
    };
    cluster.on('roleChanged', listener);
  });
}

describe.skipIf(skip !== undefined)('a Redis answering garbage', () => {
  it('costs the leader its role within maxDrift, never a crash, and the election resumes when Redis is back', async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.kill());
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => process.off('unhandledRejection', onUnhandled));

    const cluster = await run({ project: 'garbage', nodeId: 'g1', redisUrl: server.url, leaseTTL: 1000, maxDrift: 500, tickInterval: 100 });
    cleanups.push(() => cluster.close().catch(() => undefined));
    if (cluster.role !== 'primary') await nextChange(cluster, 'primary', 5000);
    const firstEpoch = cluster.status().epoch;

    const lost = nextChange(cluster, 'secondary', 5000);
    await server.kill();
    const garbage = await garbageServer(server.port);
    cleanups.push(() => new Promise((r) => garbage.close(() => r(undefined))));
    const change = await lost;
    expect(cluster.role).toBe('secondary');
    expect(change.from).toBe('primary');
    expect(cluster.status().redis.connection).toBe('failing');

    // The real server comes back on the same port: leadership resumes with a higher revision.
    const back = nextChange(cluster, 'primary', 10_000);
    await new Promise<void>((r) => garbage.close(() => r()));
    await server.restart();
    const resumed = await back;
    expect(resumed.epoch).toBeGreaterThan(firstEpoch);
    expect(unhandled).toEqual([]);
  });
});
