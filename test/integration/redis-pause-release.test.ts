/**
 * A release that runs late must not delete a later term: the cause of the two primaries the
 * lease chaos found with redis-server paused (chaos/README.md, seed 562695633), reproduced
 * against a real redis-server that the test starts on a free loopback port and SIGSTOPs.
 *
 * What happened: the leader stepped down on drift while the server was stopped and sent its
 * release (as EVALSHA), then an acquire. On SIGCONT the server answered the release NOSCRIPT
 * (that script had never run on it) and ran the acquire, which found the lease still in the
 * node's session and took it again (`reacquired`); the EVAL the store sent after the NOSCRIPT
 * then deleted that new term (the script checked the session only) and a standby took over
 * (`handover`) while the node was still primary. Now a release always goes as EVAL (it runs where
 * it was sent) and names the revision of the term it gives up (the script leaves any other term).
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uniqueProject } from '../../harness/redis-cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import type { OpReply } from '../../src/core/lease-machine.js';
import { leaseKeys } from '../../src/transport/redis/lease-keys.js';
import { RedisLeaseStore } from '../../src/transport/redis/redis-lease-store.js';

const skip = redisSkipReason();
let server: RedisServer;
let raw: Redis;

beforeAll(async () => {
  if (skip !== undefined) return;
  server = await RedisServer.start();
  raw = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await raw.connect();
});
afterAll(async () => {
  raw?.disconnect();
  await server?.kill(); // SIGKILL by pid, paused or not
});

const stores: RedisLeaseStore[] = [];
afterEach(async () => {
  server?.resume();
  for (const s of stores.splice(0)) await s.close();
});

/** A store of `project` for `nodeId`, connected (resolves at its first `ready`, within 5 s). */
async function store(project: string, nodeId: string): Promise<RedisLeaseStore> {
  const s = new RedisLeaseStore({
    keys: leaseKeys(project),
    nodeId,
    session: `${nodeId}-${Math.random().toString(36).slice(2)}`,
    priority: 1,
    strategy: 'race',
    leaseTTL: 5000,
    tickInterval: 100,
    commandTimeout: 3000,
    eventsLimit: 100,
    redisUrl: server.url,
    redisOptions: undefined,
  });
  stores.push(s);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${nodeId}: not connected within 5 s`)), 5000);
    s.open({
      onNotice: () => undefined,
      onConnected: () => {
        clearTimeout(timer);
        resolve();
      },
      onConnectionLost: () => undefined,
    });
  });
  return s;
}

const args = { eligible: true, knownRevision: 0 } as const;

function grant(reply: OpReply): { revision: number; from: string } {
  if (reply.kind !== 'acquire' || reply.outcome !== 'acquired') throw new Error(`not acquired: ${JSON.stringify(reply)}`);
  return { revision: reply.revision, from: reply.from };
}

describe.skipIf(skip !== undefined)('a late release (real Redis, SIGSTOP)', () => {
  it('runs before the acquire sent after it, across a pause', async () => {
    const project = uniqueProject('pause');
    // As in the chaos run: the acquire script is cached on the server, the release script is not.
    await raw.script('FLUSH');
    const n2 = await store(project, 'n2');
    const n1 = await store(project, 'n1');
    const first = grant(await n2.acquire(args));
    expect((await n1.acquire(args)).kind).toBe('acquire');

    server.pause();
    // n2 steps down on drift while the server is stopped: its release, then its next acquire.
    const released = n2.release('drift', false, first.revision);
    const again = n2.acquire({ eligible: true, knownRevision: first.revision });
    // Both wait in the stopped server's socket; bounded pause, then SIGCONT.
    await new Promise((r) => setTimeout(r, 200));
    server.resume();

    const [wasReleased, second] = [await released, grant(await again)];
    // n2 holds the term it was granted: the standby finds it taken, at that revision. (Before,
    // it took the lease over: the late release had deleted n2's new term.)
    const standby = await n1.acquire(args);
    expect(standby).toMatchObject({ kind: 'acquire', outcome: 'taken', leader: { nodeId: 'n2', revision: second.revision } });
    // And in the order sent: the release first, then the acquire (before: 'self', then the release).
    expect(wasReleased).toBe(true);
    expect(second).toEqual({ revision: first.revision + 1, from: 'released' });
  });

  it('leaves a later term of the same node alone', async () => {
    const project = uniqueProject('fence');
    const n2 = await store(project, 'n2');
    const n1 = await store(project, 'n1');
    const first = grant(await n2.acquire(args));
    // The lease still in n2's session: taken again as a new term (a reacquire).
    const second = grant(await n2.acquire({ eligible: true, knownRevision: first.revision }));
    expect(second).toEqual({ revision: first.revision + 1, from: 'self' });

    // The ended term's release, late: nothing is deleted, nothing published.
    expect(await n2.release('drift', false, first.revision)).toBe(false);
    expect(await n1.acquire(args)).toMatchObject({ outcome: 'taken', leader: { nodeId: 'n2', revision: second.revision } });
    expect(await n2.refresh(args)).toMatchObject({ kind: 'refresh', outcome: 'refreshed' });
    const events = await n2.events(10);
    expect(events.filter((e) => e.action === 'released')).toEqual([]);

    // The current term's release, and a closing node's (no revision), still work.
    expect(await n2.release('stepdown', false, second.revision)).toBe(true);
    const third = grant(await n1.acquire(args));
    expect(third.from).toBe('released');
    expect(await n1.release('shutdown', true)).toBe(true);
  });
});
