/**
 * Whether a node is healthy in its role: the one judgement behind `Watcher.health()`,
 * `Cluster.health()` and `failover-watch run --health`'s `GET /healthz` (which answers
 * `status` with `ok: REASON` or `unhealthy: REASON`).
 *
 * Healthy means:
 * - ZeroMQ primary: its heartbeats go through the endpoint on time (`ownHeartbeatAgeMs` within
 *   `min(2 * heartbeatInterval + 250, heartbeatTimeout)` ms: the last one its own subscriber read
 *   back, or one sent since on that same connection), and its filesystem socket file was not
 *   taken by another process (`endpointStolen`);
 * - ZeroMQ secondary: it hears a live primary, or is taking over;
 * - Redis: the last lease operation succeeded, and the node is leader or standby;
 * - `starting` and `stopped` are not healthy.
 *
 * Pure: reads a `status()` snapshot, imports nothing at run time.
 *
 * @module
 */
import type { WatcherStatus } from './watcher.js';
import type { ClusterStatus } from './redis.js';
import type { Health } from './election/contract.js';

export type { Health };

const healthy = (reason: string): Health => ({ ok: true, status: 200, reason });
const unhealthy = (reason: string): Health => ({ ok: false, status: 503, reason });

/** The ZeroMQ Watcher's health, from its `status()`. */
export function judgeHealth(st: WatcherStatus): Health {
  if (st.role === 'primary') {
    const limit = Math.min(2 * st.heartbeatInterval + 250, st.heartbeatTimeout);
    if (st.endpointStolen !== undefined) {
      return unhealthy(`endpoint stolen: ${st.endpointStolen.detail}; nodes connecting now do not reach this primary`);
    }
    if (st.ownHeartbeatAgeMs === undefined) return unhealthy('no own heartbeat seen yet');
    if (st.ownHeartbeatAgeMs > limit) {
      return unhealthy(`own heartbeat ${Math.round(st.ownHeartbeatAgeMs)} ms old (limit ${limit} ms)`);
    }
    return healthy('primary, heartbeats on time');
  }
  if (st.role === 'secondary') {
    if (st.phase === 'acquiring' || st.phase === 'claiming' || st.phase === 'promoting') return healthy('taking over');
    if (st.primary !== undefined && !st.primarySuspected) return healthy(`following ${st.primary.instanceId}`);
    return unhealthy(st.primarySuspected ? 'primary lost' : 'no primary heard');
  }
  return unhealthy(st.role);
}

/** The Redis election's health, from its `status()`. */
export function judgeLeaseHealth(st: ClusterStatus): Health {
  if (st.redis.connection !== 'ok') return unhealthy(`redis ${st.redis.connection}`);
  if (st.role === 'primary') return healthy('leader, lease refreshed');
  if (st.role === 'secondary') return healthy(st.primary ? `standby of ${st.primary.instanceId}` : 'standby');
  return unhealthy(st.role);
}

/** The body `GET /healthz` answers, e.g. `ok: following a\n`. */
export function healthText(h: Health): string {
  return `${h.ok ? 'ok' : 'unhealthy'}: ${h.reason}\n`;
}
