/**
 * A write fenced by the election's epoch in the same database: the leader's UPDATE only applies
 * while no newer term has written (`WHERE epoch <= $1`), so a stale leader's write is refused.
 * Run: DATABASE_URL=postgres://... tsx examples/postgres-fenced-write.ts
 */
import pg from 'pg';
import { PostgresElection } from 'failover-watch/postgres';

const url = process.env.DATABASE_URL ?? 'postgres://127.0.0.1:5432/postgres';
const db = new pg.Client({ connectionString: url });
await db.connect();
await db.query('CREATE TABLE IF NOT EXISTS fenced_counter (id int PRIMARY KEY, value bigint NOT NULL, epoch bigint NOT NULL)');
await db.query('INSERT INTO fenced_counter VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING');

/** Applies only if no newer term wrote: true when the row was updated. */
async function fencedIncrement(epoch: number): Promise<boolean> {
  const r = await db.query('UPDATE fenced_counter SET value = value + 1, epoch = $1 WHERE id = 1 AND epoch <= $1', [epoch]);
  return r.rowCount === 1;
}

const project = `fenced-example-${process.pid}`;
const first = new PostgresElection({ project, instanceId: 'first', connectionString: url });
await first.start();
const oldEpoch = first.epoch;
console.log(`first leads at epoch ${oldEpoch}: write ${await fencedIncrement(oldEpoch) ? 'applied' : 'refused'}`);
const second = new PostgresElection({ project, instanceId: 'second', connectionString: url });
await second.start();
const promoted = new Promise<void>((resolve) => second.on('roleChanged', (c) => c.to === 'primary' && resolve()));
await first.shutdown();
await promoted;
console.log(`second leads at epoch ${second.epoch}: write ${await fencedIncrement(second.epoch) ? 'applied' : 'refused'}`);
const stale = await fencedIncrement(oldEpoch);
console.log(`a stale write of epoch ${oldEpoch}: ${stale ? 'applied' : 'refused'}`);
await second.shutdown();
await db.end();
process.exitCode = stale ? 1 : 0;
