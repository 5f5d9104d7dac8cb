/**
 * One PostgreSQL election node as a child process, for tests where a crash or a pause must be
 * real. Usage: tsx harness/postgres-node.ts URL PROJECT ID. Prints one JSON line per event
 * (`ready`, `promote`, `aborted`, `demote`, `role`) with `at` (wall ms); SIGTERM shuts down.
 *
 * With `FW_ACT_INTERVAL=ms` the node "acts" as a leader every that many ms: it reads
 * `election.role` and its term's signal right before, as an application should, and prints
 * `act` with the epoch only when both say it still leads. `FW_PG_OPTIONS` (JSON) adds election
 * options (durations).
 *
 * @module
 */
import { PostgresElection, type PostgresElectionOptions } from '../src/postgres.js';

const [url, project, id] = process.argv.slice(2) as [string, string, string];
const out = (event: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ ...event, at: Date.now() })}\n`);
const extra = JSON.parse(process.env.FW_PG_OPTIONS ?? '{}') as Partial<PostgresElectionOptions>;
const actEvery = Number(process.env.FW_ACT_INTERVAL ?? 0);
let term: { epoch: number; signal: AbortSignal } | undefined;
const election = new PostgresElection({
  ...extra,
  project,
  instanceId: id,
  connectionString: url,
  onPromote: ({ epoch, signal }) => {
    out({ ev: 'promote', epoch });
    term = { epoch, signal };
    signal.addEventListener('abort', () => out({ ev: 'aborted', epoch }));
  },
  onDemote: ({ epoch, reason }) => out({ ev: 'demote', epoch, reason }),
});
election.on('roleChanged', (c) => out({ ev: 'role', to: c.to, epoch: c.epoch, reason: c.reason }));
const ticker =
  actEvery > 0
    ? setInterval(() => {
        if (term !== undefined && election.role === 'primary' && !term.signal.aborted) out({ ev: 'act', epoch: term.epoch });
      }, actEvery)
    : undefined;
process.on('SIGTERM', () => {
  clearInterval(ticker);
  void election.shutdown().then(() => process.exit(0));
});
await election.start();
out({ ev: 'ready', role: election.role });
