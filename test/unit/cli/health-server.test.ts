/**
 * `run --health`'s judgement of a node, from its status() alone: pure, no server.
 */
import { describe, expect, it } from 'vitest';
import { judgeHealth } from '../../../src/cli/supervisor/health-server.js';
import type { WatcherStatus } from '../../../src/watcher.js';

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
    expect(judgeHealth(primary())).toEqual({ healthy: true, reason: 'primary, heartbeats on time' });
  });

  it('a primary whose socket file was stolen is not, and says why', () => {
    const st = primary({ endpointStolen: { path: '/run/x.sock', found: 'replaced', detail: 'another socket (inode 9) is at /run/x.sock', sinceMs: 5 } });
    const h = judgeHealth(st);
    expect(h.healthy).toBe(false);
    expect(h.reason).toContain('endpoint stolen: another socket (inode 9)');
  });
});
