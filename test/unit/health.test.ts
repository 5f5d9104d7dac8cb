/**
 * The one judgement of a node's health (Watcher.health(), Cluster.health(), `run --health`'s
 * /healthz), from its status() alone: pure, no server.
 */
import { describe, expect, it } from 'vitest';
import { judgeHealth, judgeLeaseHealth } from '../../src/health.js';
import type { ClusterStatus } from '../../src/redis.js';
import type { WatcherStatus } from '../../src/watcher.js';

const primary = (fields: Partial<WatcherStatus> = {}): WatcherStatus =>
  ({
    role: 'primary',
    phase: 'primary',
    heartbeatInterval: 100,
    heartbeatTimeout: 1000,
    ownHeartbeatAgeMs: 20,
    endpointStolen: undefined,
    primarySuspected: false,
    primary: undefined,
    ...fields,
  }) as WatcherStatus;

describe('judgeHealth', () => {
  it('a primary with heartbeats on time is healthy', () => {
    expect(judgeHealth(primary())).toEqual({ ok: true, status: 200, reason: 'primary, heartbeats on time' });
  });

  it('a primary whose socket file was stolen is not, and says why', () => {
    const st = primary({ endpointStolen: { path: '/run/x.sock', found: 'replaced', detail: 'another socket (inode 9) is at /run/x.sock', sinceMs: 5 } });
    const h = judgeHealth(st);
    expect(h).toMatchObject({ ok: false, status: 503 });
    expect(h.reason).toContain('endpoint stolen: another socket (inode 9)');
  });
});

describe('judgeHealth, other states', () => {
  const secondary = (fields: Partial<WatcherStatus>): WatcherStatus => ({ ...primary(), role: 'secondary', phase: 'secondary', ownHeartbeatAgeMs: undefined, ...fields }) as WatcherStatus;

  it('a primary whose own heartbeat is late is not', () => {
    expect(judgeHealth(primary({ ownHeartbeatAgeMs: 600 }))).toEqual({ ok: false, status: 503, reason: 'own heartbeat 600 ms old (limit 450 ms)' });
  });

  it('a secondary taking over is healthy', () => {
    expect(judgeHealth(secondary({ phase: 'promoting', primarySuspected: true }))).toEqual({ ok: true, status: 200, reason: 'taking over' });
  });

  it('starting and stopped are not healthy', () => {
    expect(judgeHealth(secondary({ role: 'stopped' }))).toEqual({ ok: false, status: 503, reason: 'stopped' });
    expect(judgeHealth(secondary({ role: 'starting' }))).toEqual({ ok: false, status: 503, reason: 'starting' });
  });
});

describe('judgeLeaseHealth', () => {
  const lease = (fields: Partial<ClusterStatus>, connection = 'ok'): ClusterStatus =>
    ({ role: 'secondary', primary: undefined, ...fields, redis: { connection } }) as ClusterStatus;

  it('a leader or standby with Redis answering is healthy', () => {
    expect(judgeLeaseHealth(lease({ role: 'primary' }))).toEqual({ ok: true, status: 200, reason: 'leader, lease refreshed' });
    expect(judgeLeaseHealth(lease({ primary: { instanceId: 'w1', epoch: 1 } }))).toEqual({ ok: true, status: 200, reason: 'standby of w1' });
  });

  it('a node whose Redis fails is not', () => {
    expect(judgeLeaseHealth(lease({ role: 'primary' }, 'failing'))).toEqual({ ok: false, status: 503, reason: 'redis failing' });
  });
});
