/**
 * The election contract on PostgresElection: one throwaway PostgreSQL server for the file
 * (harness/postgres-server.ts), a fresh project per test, nodes in this process. `crash()` ends
 * the node's sessions from the server side (`pg_terminate_backend`) without a goodbye from the
 * node, so the lock is released as by a dying process; the real SIGKILL of a leader process is
 * test/integration/postgres-election.test.ts.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { PostgresServer, postgresSkipReason } from '../../harness/postgres-server.js';
import type { Election } from '../../src/election/contract.js';
import { PostgresElection } from '../../src/postgres.js';
import { describeElectionBehaviour } from './election-behaviour.js';

const skip = postgresSkipReason();
let server: PostgresServer | undefined;
let clusters = 0;

describe.skipIf(skip !== undefined)('PostgreSQL contract suite', () => {
  beforeAll(async () => {
    server = await PostgresServer.start();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  describeElectionBehaviour({
    name: 'postgres',
    // A graceful handover is onDemote, pg_advisory_unlock and the waiter's epoch statement.
    handoverBoundMs: 1500,
    // A crash releases the lock as the session ends: milliseconds, no lease to wait out.
    crashBoundMs: 1500,
    async setup() {
      const db = server!;
      const project = `contract-${process.pid}-${++clusters}`;
      return {
        node: (o) =>
          new PostgresElection({
            project,
            connectionString: db.url,
            instanceId: o.instanceId,
            ...(o.priority !== undefined ? { priority: o.priority } : {}),
            ...(o.onPromote !== undefined ? { onPromote: o.onPromote } : {}),
            ...(o.onDemote !== undefined ? { onDemote: o.onDemote } : {}),
          }),
        crash: async (node: Election) => {
          await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1", [
            `failover-watch % ${node.instanceId}`,
          ]);
        },
        teardown: async () => undefined,
      };
    },
  });
});
