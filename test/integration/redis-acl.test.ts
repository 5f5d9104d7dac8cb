/**
 * The Redis ACL that docs/SECURITY.md recommends, against a real redis-server: a user limited to
 * the project's keys and channel, `+@read +@write +@scripting +@pubsub +time`. It elects, and it
 * starts quietly: that user may not run INFO, and ioredis's ready check (INFO) printed "Skipping
 * the ready check ... NOPERM" on the console twice per start (command and subscriber
 * connections). The lease store now connects without the ready check.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { run } from '../../src/redis.js';

const skip = redisSkipReason();
let server: RedisServer | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await server?.kill();
  server = undefined;
});

describe.skipIf(skip !== undefined)(`Redis with the recommended ACL${skip !== undefined ? ` (skipped: ${skip})` : ''}`, () => {
  it('elects with the ACL of SECURITY.md and prints nothing', async () => {
    const project = uniqueProject('acl');
    const acl = ['app', 'on', '>app-pw', `~{${project}}:*`, `&{${project}}:*`, '+@read', '+@write', '+@scripting', '+@pubsub', '+time'];
    server = await RedisServer.start(10_000, ['--user', ...acl, '--user', 'default', 'off']);
    const printed: string[] = [];
    for (const level of ['warn', 'error', 'log', 'info'] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void printed.push(args.map(String).join(' ')));
    }
    const url = `redis://app:app-pw@127.0.0.1:${server.port}`;
    const a = await run({ project, nodeId: 'a', redisUrl: url, leaseTTL: 1000, maxDrift: 500, tickInterval: 100 });
    const b = await run({ project, nodeId: 'b', redisUrl: url, leaseTTL: 1000, maxDrift: 500, tickInterval: 100 });
    try {
      expect([a.role, b.role]).toEqual(['primary', 'secondary']);
    } finally {
      await b.close();
      await a.close();
    }
    expect(printed).toEqual([]);
  });
});
