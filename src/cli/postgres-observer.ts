/**
 * A read-only look at a PostgreSQL election for `status --postgres` and `watch --postgres`: the
 * statements of `../postgres/sql.ts` that read the recorded leader and whether anyone holds the
 * project's advisory lock now (`pg_locks`), the fresh presence rows and the recent events, and
 * LISTEN on the channel the election NOTIFYs on. It never takes a lock, never writes a row and
 * never creates the tables: its session is `default_transaction_read_only` (docs/POSTGRES.md,
 * "Observing").
 *
 * A node leads while it holds the lock: the row in `<prefix>_election` names it and the epoch,
 * and `pg_locks` shows the lock granted. A leader that crashed sends no notice (its session just
 * ends), so a watch also polls; see `commands/watch.ts`.
 *
 * Loaded only by those commands with `--postgres`, so pg stays out of every other path. A lost
 * connection is opened again at the next read (and LISTEN again), so a watch survives a server
 * restart.
 *
 * @module
 */
import pg from 'pg';
import type { Client as PgClient } from 'pg';
import { POSTGRES_DEFAULTS, resolvePostgresOptions } from '../postgres/options.js';
import { lockKey, postgresSql, type PostgresSql } from '../postgres/sql.js';
import { parseStoredMetadata } from '../postgres/election.js';
import type { Metadata } from '../protocol/metadata.js';
import type { LeaseSnapshot } from './redis-observer.js';

/** Options of {@link PostgresObserver}. */
export interface PostgresObserverOptions {
  /** A postgres:// or postgresql:// URL. */
  readonly url: string;
  readonly project: string;
  /** The election's `tablePrefix`. @default 'failover_watch' */
  readonly tablePrefix?: string;
  /** Bound on connecting and on each statement, ms. */
  readonly timeout: number;
}

/** How recent a presence row must be to count as live: what `liveNodes()` of the election uses by default. */
export const PRESENCE_FRESHNESS = POSTGRES_DEFAULTS.presenceInterval * 3;

/** One read-only session, opened again when it was lost. */
export class PostgresObserver {
  readonly sql: PostgresSql;
  readonly #project: string;
  readonly #key: string;
  readonly #config: pg.ClientConfig;
  #client: PgClient | undefined;
  #opening: Promise<PgClient> | undefined;
  #onNotice: (() => void) | undefined;
  #closed = false;

  /** Throws `InvalidOptionError` for a project, URL or table prefix the election would refuse. */
  constructor(options: PostgresObserverOptions) {
    const o = resolvePostgresOptions(
      { project: options.project, connectionString: options.url, ...(options.tablePrefix === undefined ? {} : { tablePrefix: options.tablePrefix }) },
      'observer',
    );
    this.sql = postgresSql(o.tablePrefix);
    this.#project = o.project;
    this.#key = lockKey(o.project);
    this.#config = {
      connectionString: o.connectionString,
      connectionTimeoutMillis: options.timeout,
      query_timeout: options.timeout,
      application_name: 'failover-watch observer',
      options: `-c default_transaction_read_only=on -c statement_timeout=${options.timeout}`,
    };
  }

  /** Opens the session; rejects with the connection error. */
  async connect(): Promise<void> {
    await this.#session();
  }

  /** The recorded leader if it holds the lock, the live nodes, the last epoch; absent tables read as an empty election. */
  async read(): Promise<LeaseSnapshot> {
    const client = await this.#session();
    const p = this.#project;
    const now = await client.query<{ now: number; missing: boolean }>(
      `SELECT (extract(epoch FROM now()) * 1000)::float8 AS now, (${this.sql.missingTables}) AS missing`,
    );
    const serverTime = Math.round(Number(now.rows[0]?.now));
    if (now.rows[0]?.missing !== false) return { leader: undefined, revisionCounter: 0, liveNodes: [], serverTime, metadataDropped: 0 };
    const row = (
      await client.query<{ epoch: string; leader: string; held: boolean; priority: number | null; metadata: string | null }>(this.sql.leader, [p, this.#key])
    ).rows[0];
    const nodes = await client.query<{ node_id: string; eligible: boolean; priority: number | null; metadata: string | null; last_seen: number }>(
      this.sql.liveNodes,
      [p, PRESENCE_FRESHNESS],
    );
    // The metadata column of the presence rows; null where it breaks the rules (dropped).
    const dropped = new Set<string>();
    const metadataOf = (node: string, text: string | null): Metadata | null => {
      const m = parseStoredMetadata(text);
      if (m !== 'invalid') return m;
      dropped.add(node);
      return null;
    };
    const epoch = row === undefined ? 0 : Number(row.epoch);
    let leader: LeaseSnapshot['leader'];
    if (row !== undefined && row.held) {
      const events = await client.query<{ node_id: string; action: string; epoch: string; at: number }>(this.sql.events_, [p, 20]);
      const elected = events.rows.find((e) => e.action === 'elected' && e.node_id === row.leader && Number(e.epoch) === epoch);
      leader = { nodeId: row.leader, revision: epoch, priority: row.priority ?? null, ttlMs: null, since: elected === undefined ? null : Math.round(Number(elected.at)), metadata: metadataOf(row.leader, row.metadata) };
    }
    const liveNodes = nodes.rows.map((n) => ({
      nodeId: n.node_id,
      priority: n.priority ?? null,
      eligible: n.eligible,
      lastSeen: Math.round(Number(n.last_seen)),
      isLeader: n.node_id === leader?.nodeId,
      metadata: metadataOf(n.node_id, n.metadata),
    }));
    // Best priority first, as for Redis.
    liveNodes.sort((a, b) => (a.priority ?? Infinity) - (b.priority ?? Infinity) || a.nodeId.localeCompare(b.nodeId));
    return { leader, revisionCounter: epoch, liveNodes, serverTime, metadataDropped: dropped.size };
  }

  /** LISTEN on the election's channel; `onNotice` runs on each notice of this project (and after a reconnect). */
  async subscribe(onNotice: () => void): Promise<void> {
    this.#onNotice = onNotice;
    const client = await this.#session();
    await client.query(`LISTEN ${this.sql.channel}`);
  }

  /** Ends the session; never rejects. */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client ?? (await this.#opening?.catch(() => undefined));
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  #session(): Promise<PgClient> {
    if (this.#client !== undefined) return Promise.resolve(this.#client);
    if (this.#opening !== undefined) return this.#opening;
    this.#opening = this.#open().finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  async #open(): Promise<PgClient> {
    if (this.#closed) throw new Error('closed');
    const client = new pg.Client(this.#config);
    const lost = (): void => {
      if (this.#client === client) this.#client = undefined;
    };
    // Errors surface through the statements that fail; the event must not throw.
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      let project: unknown;
      try {
        project = (JSON.parse(n.payload ?? '') as { project?: unknown }).project;
      } catch {
        return; // not a notice of the election
      }
      if (project === this.#project) this.#onNotice?.();
    });
    try {
      await client.connect();
      if (this.#onNotice !== undefined) await client.query(`LISTEN ${this.sql.channel}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      throw new Error('closed');
    }
    this.#client = client;
    // A new session may have missed notices: read at once.
    this.#onNotice?.();
    return client;
  }
}
