/**
 * One PostgreSQL election node as a child process, for tests where a crash must be real.
 * Usage: tsx harness/postgres-node.ts URL PROJECT ID. Prints one JSON line per event
 * (`ready`, `promote`, `aborted`, `demote`, `role`) with `at` (wall ms); SIGTERM shuts down.
 *
 * @module
 */
import { PostgresElection } from '../src/postgres.js';

const [url, project, id] = process.argv.slice(2) as [string, string, string];
const out = (event: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ ...event, at: Date.now() })}\n`);
const election = new PostgresElection({
  project,
  instanceId: id,
  connectionString: url,
  onPromote: ({ epoch, signal }) => {
    out({ ev: 'promote', epoch });
    signal.addEventListener('abort', () => out({ ev: 'aborted', epoch }));
  },
  onDemote: ({ epoch, reason }) => out({ ev: 'demote', epoch, reason }),
});
election.on('roleChanged', (c) => out({ ev: 'role', to: c.to, epoch: c.epoch, reason: c.reason }));
process.on('SIGTERM', () => void election.shutdown().then(() => process.exit(0)));
await election.start();
out({ ev: 'ready', role: election.role });
