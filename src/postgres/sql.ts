/**
 * The SQL of the PostgreSQL election, in one place: the advisory lock key, the three tables the
 * election creates if missing, and the statements each step runs. Every statement is a single
 * autocommitted statement, so a step is atomic without a client-side transaction.
 *
 * @module
 */
import { createHash } from 'node:crypto';

/**
 * The advisory lock key of a project: the first 8 bytes of SHA-256 of
 * `failover-watch:<project>` with the sign bit cleared, as a decimal string (a `bigint` for
 * `pg_advisory_lock(bigint)`). In `pg_locks` it shows as `classid` (high 32 bits) and `objid`
 * (low 32 bits) with `objsubid = 1`.
 */
export function lockKey(project: string): string {
  const digest = createHash('sha256').update(`failover-watch:${project}`).digest();
  return (digest.readBigUInt64BE(0) & 0x7fff_ffff_ffff_ffffn).toString();
}

/** The key that serializes the creation of the tables (one per table prefix). */
export function setupKey(prefix: string): string {
  return lockKey(`setup:${prefix}`);
}

/** The statements, for one table prefix (already validated as an identifier). */
export interface PostgresSql {
  readonly election: string;
  readonly nodes: string;
  readonly events: string;
  /** The NOTIFY channel. */
  readonly channel: string;
  readonly missingTables: string;
  readonly createTables: (setup: string) => string;
  readonly tryLock: string;
  readonly waitLock: string;
  readonly unlock: string;
  readonly yieldLock: string;
  readonly elect: string;
  readonly confirm: string;
  readonly presence: string;
  readonly queued: string;
  readonly betterWaiter: string;
  readonly forget: string;
  readonly leader: string;
  /** A node's stored metadata (JSON text, or NULL). */
  readonly nodeMetadata: string;
  /** Tells the others that a node's metadata changed (after its presence row was written). */
  readonly metadataNotice: string;
  readonly liveNodes: string;
  readonly events_: string;
  readonly trimEvents: string;
}

/** Builds the statements for `prefix` (`name` or `schema.name`). */
export function postgresSql(prefix: string): PostgresSql {
  const election = `${prefix}_election`;
  const nodes = `${prefix}_nodes`;
  const events = `${prefix}_events`;
  const channel = prefix.replace('.', '_');
  const notice = (action: string, epoch: string, priority = 'NULL::int') =>
    `pg_notify('${channel}', json_build_object('action', '${action}', 'project', $1::text, 'node', $2::text, 'epoch', ${epoch}, 'reason', $3::text, 'priority', ${priority})::text)`;
  return {
    election,
    nodes,
    events,
    channel,
    missingTables: `SELECT to_regclass('${election}') IS NULL OR to_regclass('${nodes}') IS NULL OR to_regclass('${events}') IS NULL
      OR NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('${nodes}') AND attname = 'lock_pid' AND NOT attisdropped)
      OR NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('${nodes}') AND attname = 'metadata' AND NOT attisdropped) AS missing`,
    createTables: (setup) =>
      [
        'BEGIN',
        `SELECT pg_advisory_xact_lock(${setup})`,
        `CREATE TABLE IF NOT EXISTS ${election} (project text PRIMARY KEY, epoch bigint NOT NULL, leader text NOT NULL, elected_at timestamptz NOT NULL DEFAULT now())`,
        `CREATE TABLE IF NOT EXISTS ${nodes} (project text NOT NULL, node_id text NOT NULL, last_seen timestamptz NOT NULL, eligible boolean NOT NULL, pid integer, host text, PRIMARY KEY (project, node_id))`,
        // Columns added after the first release: priority and the backend pid of the lock connection.
        `ALTER TABLE ${nodes} ADD COLUMN IF NOT EXISTS priority integer NOT NULL DEFAULT 1, ADD COLUMN IF NOT EXISTS lock_pid integer`,
        // The application metadata of the node, as JSON text (checked by every reader).
        `ALTER TABLE ${nodes} ADD COLUMN IF NOT EXISTS metadata text`,
        `CREATE TABLE IF NOT EXISTS ${events} (id bigserial PRIMARY KEY, project text NOT NULL, at timestamptz NOT NULL DEFAULT now(), node_id text NOT NULL, action text NOT NULL, epoch bigint NOT NULL, reason text)`,
        'COMMIT',
      ].join(';\n'),
    tryLock: 'SELECT pg_try_advisory_lock($1::bigint) AS locked',
    waitLock: 'SELECT pg_advisory_lock($1::bigint)',
    // $1 project, $2 node, $3 reason, $4 epoch, $5 key.
    // The main query reads the insert's row: PostgreSQL runs a WITH insert nobody reads after the
    // main query, so the lock would go first and a successor's 'elected' row could get the lower id.
    unlock: `WITH ev AS (INSERT INTO ${events} (project, node_id, action, epoch, reason) VALUES ($1, $2, 'released', $4, $3) RETURNING id)
      SELECT pg_advisory_unlock($5::bigint) AS released, ${notice('released', '$4::bigint')} FROM ev`,
    // Gives the lock back unused (no epoch spent) to a better queued node. $1 key.
    yieldLock: 'SELECT pg_advisory_unlock($1::bigint) AS released',
    // The fencing step, run right after the lock is held: the epoch grows in the same statement
    // that records the leader and tells the standbys. $1 project, $2 node, $3 reason, $4 priority.
    elect: `WITH e AS (
        INSERT INTO ${election} AS t (project, epoch, leader) VALUES ($1, 1, $2)
        ON CONFLICT (project) DO UPDATE SET epoch = t.epoch + 1, leader = EXCLUDED.leader, elected_at = now()
        RETURNING t.epoch),
      ev AS (INSERT INTO ${events} (project, node_id, action, epoch, reason) SELECT $1, $2, 'elected', epoch, $3 FROM e)
      SELECT epoch::text AS epoch, ${notice('elected', 'epoch', '$4::int')} FROM e`,
    confirm: `SELECT epoch::text AS epoch, leader FROM ${election} WHERE project = $1`,
    // $1 project, $2 node, $3 eligible, $4 pid, $5 host, $6 priority, $7 metadata.
    presence: `INSERT INTO ${nodes} (project, node_id, last_seen, eligible, pid, host, priority, metadata) VALUES ($1, $2, now(), $3, $4, $5, $6, $7)
      ON CONFLICT (project, node_id) DO UPDATE SET last_seen = now(), eligible = EXCLUDED.eligible, pid = EXCLUDED.pid, host = EXCLUDED.host,
        priority = EXCLUDED.priority, metadata = EXCLUDED.metadata`,
    // Run on the lock connection before it queues: which backend queues for whom, at what priority.
    // $1 project, $2 node, $3 pid, $4 host, $5 priority, $6 metadata (stored before the node can lead).
    queued: `INSERT INTO ${nodes} (project, node_id, last_seen, eligible, pid, host, priority, lock_pid, metadata) VALUES ($1, $2, now(), true, $3, $4, $5, pg_backend_pid(), $6)
      ON CONFLICT (project, node_id) DO UPDATE SET last_seen = now(), eligible = true, pid = EXCLUDED.pid, host = EXCLUDED.host,
        priority = EXCLUDED.priority, lock_pid = EXCLUDED.lock_pid, metadata = EXCLUDED.metadata`,
    // A node of strictly better priority queued for the lock right now: $1 project, $2 key, $3 own
    // priority, $4 own node, $5 freshness in ms (a row left by a dead node cannot claim a reused pid).
    betterWaiter: `SELECT n.node_id, n.priority FROM pg_locks l JOIN ${nodes} n ON n.project = $1 AND n.lock_pid = l.pid
      WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = $2::bigint
        AND n.eligible AND n.node_id <> $4 AND n.priority < $3 AND n.last_seen > now() - make_interval(secs => $5::float8 / 1000)
      ORDER BY n.priority, n.node_id LIMIT 1`,
    forget: `DELETE FROM ${nodes} WHERE project = $1 AND node_id = $2`,
    // $1 project, $2 key: the recorded leader, and whether anyone holds the lock now.
    leader: `SELECT e.epoch::text AS epoch, e.leader,
        EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND ((l.classid::bigint << 32) | l.objid::bigint) = $2::bigint) AS held,
        (SELECT n.priority FROM ${nodes} n WHERE n.project = e.project AND n.node_id = e.leader) AS priority,
        (SELECT n.metadata FROM ${nodes} n WHERE n.project = e.project AND n.node_id = e.leader) AS metadata
      FROM ${election} e WHERE e.project = $1`,
    // $1 project, $2 node.
    nodeMetadata: `SELECT metadata FROM ${nodes} WHERE project = $1 AND node_id = $2`,
    // $1 project, $2 node.
    metadataNotice: `SELECT pg_notify('${channel}', json_build_object('action', 'metadata', 'project', $1::text, 'node', $2::text)::text)`,
    // $1 project, $2 freshness in ms.
    liveNodes: `SELECT node_id, eligible, priority, metadata, (extract(epoch FROM last_seen) * 1000)::float8 AS last_seen
      FROM ${nodes} WHERE project = $1 AND last_seen > now() - make_interval(secs => $2::float8 / 1000) ORDER BY node_id`,
    // $1 project, $2 limit.
    events_: `SELECT node_id, action, epoch::text AS epoch, reason, (extract(epoch FROM at) * 1000)::float8 AS at
      FROM ${events} WHERE project = $1 ORDER BY id DESC LIMIT $2`,
    // $1 project, $2 how many to keep.
    trimEvents: `DELETE FROM ${events} WHERE project = $1 AND id < (SELECT min(id) FROM (SELECT id FROM ${events} WHERE project = $1 ORDER BY id DESC LIMIT $2) k)`,
  };
}
