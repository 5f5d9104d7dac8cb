/**
 * failover-watch/postgres: leader election on a PostgreSQL session advisory lock, for processes
 * on more than one host that already share a database.
 *
 * The leader's own connection holds the lock, so when its process dies PostgreSQL releases the
 * lock as the connection closes and a standby blocked on it leads in milliseconds: no lease to
 * wait out. The epoch handed to `onPromote` grows in the statement run right after the lock is
 * held, so the application's tables in the same database can reject writes of an older term
 * (examples/postgres-fenced-write.ts). Guarantees, limits and settings: docs/POSTGRES.md.
 *
 * Only this entry point loads `pg` (an optional peer dependency: `npm install pg`).
 *
 * @example
 * import { PostgresElection } from 'failover-watch/postgres';
 * const election = new PostgresElection({
 *   project: 'billing',
 *   connectionString: process.env.DATABASE_URL,
 *   onPromote: async ({ epoch, signal }) => { await work(epoch, signal); },
 * });
 * await election.start();
 * process.on('SIGTERM', () => void election.shutdown());
 *
 * @module
 */
export {
  PostgresElection,
  redactUrl,
  type PostgresElectionEvents,
  type PostgresElectionStatus,
  type PostgresLeadershipEvent,
  type PostgresPhase,
} from './postgres/election.js';
export { POSTGRES_DEFAULTS as DEFAULTS, type PostgresElectionOptions } from './postgres/options.js';
export { lockKey } from './postgres/sql.js';
export { FailoverError, InvalidOptionError, isFailoverError } from './errors.js';
export type { FailoverErrorCode } from './errors.js';
export type {
  Election,
  ElectionDemoteContext,
  ElectionNode,
  ElectionPromoteContext,
  ElectionRole,
  ElectionRoleChange,
  ElectionStatusCore,
  Health,
} from './election/contract.js';
export type { Logger } from './runtime/logger.js';
