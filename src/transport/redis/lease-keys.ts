/**
 * The Redis key layout of one project. Every key carries the project in a hash tag (`{project}`)
 * so that all of them live in one slot of a Redis Cluster and a script may touch them together.
 *
 * | key                      | type   | TTL      | content                                                  |
 * |--------------------------|--------|----------|----------------------------------------------------------|
 * | `{project}:leader`       | hash   | leaseTTL | the lease: `session`, `node`, `rev`, `prio`              |
 * | `{project}:revision`     | string | none     | the last revision handed out (INCR)                      |
 * | `{project}:last`         | hash   | none     | the last holder: `node`, `rev`, `state` (held/released)  |
 * | `{project}:nodes`        | zset   | none     | nodeId scored by the server-time ms its registration ends |
 * | `{project}:node-info`    | hash   | none     | nodeId -> JSON `{priority, eligible, session, lastSeen}` |
 * | `{project}:events`       | list   | none     | newest-first JSON leadership events, capped              |
 * | `{project}:metadata`     | hash   | none     | nodeId -> JSON object of the node's application metadata |
 * | `{project}:leadership`   | pub/sub channel | | JSON notices `{type, nodeId, revision, priority}`       |
 *
 * Expired registrations are pruned by every lease operation, so the sets stay as small as the
 * cluster.
 *
 * @module
 */

/** The keys and channel of one project. */
export interface LeaseKeys {
  readonly leader: string;
  readonly revision: string;
  readonly last: string;
  readonly nodes: string;
  readonly nodeInfo: string;
  readonly events: string;
  readonly channel: string;
  /** nodeId -> the node's application metadata as a JSON object (not a script key). */
  readonly metadata: string;
}

/** The key layout of `project` (validated by `resolveLeaseOptions`: no braces, spaces or glob characters). */
export function leaseKeys(project: string): LeaseKeys {
  const p = `{${project}}`;
  return {
    leader: `${p}:leader`,
    revision: `${p}:revision`,
    last: `${p}:last`,
    nodes: `${p}:nodes`,
    nodeInfo: `${p}:node-info`,
    events: `${p}:events`,
    channel: `${p}:leadership`,
    metadata: `${p}:metadata`,
  };
}

/** The keys the lease scripts take, in their KEYS order. */
export function scriptKeys(k: LeaseKeys): string[] {
  return [k.leader, k.revision, k.last, k.nodes, k.nodeInfo, k.events];
}
