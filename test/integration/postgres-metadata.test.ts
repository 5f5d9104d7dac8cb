/**
 * Application metadata on PostgresElection, against a real server started by the test: stored in
 * the presence rows' `metadata` column, announced by NOTIFY when it changes.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresElection, type PostgresElectionOptions } from '../../src/postgres.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { ElectionPrimaryChangedEvent, ElectionPrimaryMetadataChangedEvent } from '../../src/election/contract.js';
import { PostgresServer, postgresSkipReason } from '../../harness/postgres-server.js';

const skip = postgresSkipReason();
let server: PostgresServer;
let raw: pg.Client;
let n = 0;
const project = () => `pgmeta-${process.pid}-${++n}`;

const node = (p: string, id: string, extra: Partial<PostgresElectionOptions> = {}) =>
  new PostgresElection({ project: p, instanceId: id, connectionString: server.url, ...extra });

function next<T>(e: PostgresElection, name: 'primaryChanged' | 'primaryMetadataChanged', timeout: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${e.instanceId}: no ${name} within ${timeout} ms`)), timeout);
    e.once(name, ((event: T) => {
      clearTimeout(timer);
      resolve(event);
    }) as never);
  });
}

describe.skipIf(skip !== undefined)('PostgresElection metadata', () => {
  beforeAll(async () => {
    server = await PostgresServer.start();
    raw = new pg.Client({ connectionString: server.url });
    await raw.connect();
  });
  afterAll(async () => {
    await raw?.end();
    await server?.destroy();
  });

  it('invalid metadata throws naming the key', async () => {
    expect(() => node('x', 'a', { metadata: { port: 7 as unknown as string } })).toThrow(/metadata\.port/);
    const a = node('x', 'a', { metadata: { port: '1' } });
    expect(() => a.setMetadata({ 'bad key': 'v' })).toThrow(InvalidOptionError);
    expect(a.metadata).toEqual({ port: '1' });
    await a.shutdown();
  });

  it('follower gets the leader metadata everywhere', async () => {
    const p = project();
    const a = node(p, 'a', { metadata: { port: '7001' } });
    await a.start();
    const b = node(p, 'b', { metadata: { port: '7002' } });
    const changed = next<ElectionPrimaryChangedEvent>(b, 'primaryChanged', 5000);
    await b.start();
    expect(await changed).toMatchObject({ instanceId: 'a', epoch: a.epoch, metadata: { port: '7001' } });
    expect(b.status().postgres.leaderMetadata).toEqual({ port: '7001' });
    expect(a.status().postgres.leaderMetadata).toBeUndefined();
    expect((await a.liveNodes()).map((x) => [x.instanceId, x.metadata])).toEqual([
      ['a', { port: '7001' }],
      ['b', { port: '7002' }],
    ]);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('setMetadata notifies followers, same term', async () => {
    const p = project();
    const a = node(p, 'a', { metadata: { port: '7001' } });
    await a.start();
    const b = node(p, 'b');
    const changed = next<ElectionPrimaryChangedEvent>(b, 'primaryChanged', 5000);
    await b.start();
    await changed;
    const epoch = a.epoch;
    const meta = next<ElectionPrimaryMetadataChangedEvent>(b, 'primaryMetadataChanged', 5000);
    a.setMetadata({ port: '8001', zone: 'z1' });
    expect(await meta).toMatchObject({ instanceId: 'a', epoch, metadata: { port: '8001', zone: 'z1' } });
    expect(a.epoch).toBe(epoch);
    expect(b.status().postgres.leaderMetadata).toEqual({ port: '8001', zone: 'z1' });
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('a change made while disconnected is told on reconnect', async () => {
    const p = project();
    const a = node(p, 'cut-a', { metadata: { port: '7001' } });
    await a.start();
    const b = node(p, 'cut-b');
    const changed = next<ElectionPrimaryChangedEvent>(b, 'primaryChanged', 5000);
    await b.start();
    await changed;
    // a's control connection (presence rows, NOTIFY) is cut; its lock connection stays.
    const cut = await raw.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'failover-watch ctl cut-a'`);
    expect(cut.rowCount).toBe(1);
    const meta = next<ElectionPrimaryMetadataChangedEvent>(b, 'primaryMetadataChanged', 5000);
    a.setMetadata({ port: '8001' });
    expect((await meta).metadata).toEqual({ port: '8001' });
    expect(a.role).toBe('primary');
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('malformed stored metadata is dropped and counted', async () => {
    const p = project();
    // Presence written once a minute: the bad row below is not rewritten before b reads it.
    const a = node(p, 'a', { metadata: { port: '7001' }, presenceInterval: 60_000 });
    await a.start();
    const b = node(p, 'b');
    const changed = next<ElectionPrimaryChangedEvent>(b, 'primaryChanged', 5000);
    await b.start();
    await changed;
    const meta = vi.fn();
    b.on('primaryMetadataChanged', meta);
    await raw.query(`UPDATE failover_watch_nodes SET metadata = $3 WHERE project = $1 AND node_id = $2`, [p, 'a', '{"bad key":"x"}']);
    await raw.query(`SELECT pg_notify('failover_watch', json_build_object('action', 'metadata', 'project', $1::text, 'node', 'a')::text)`, [p]);
    await vi.waitFor(() => expect(b.status().postgres.metadataDropped).toBe(1), { timeout: 5000, interval: 20 });
    expect(b.status().postgres.leaderMetadata).toEqual({ port: '7001' });
    expect(b.status().primary?.instanceId).toBe('a');
    expect(meta).not.toHaveBeenCalled();
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('the new leader announces its metadata on takeover', async () => {
    const p = project();
    const a = node(p, 'a', { metadata: { port: '7001' } });
    await a.start();
    const b = node(p, 'b', { metadata: { port: '7002' } });
    await b.start();
    const c = node(p, 'c');
    await c.start();
    const toB = new Promise<ElectionPrimaryChangedEvent>((resolve) => c.on('primaryChanged', (e) => e.instanceId === 'b' && resolve(e)));
    await a.shutdown();
    const event = await Promise.race([toB, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no takeover')), 5000).unref())]);
    expect(event.metadata).toEqual({ port: '7002' });
    await Promise.all([b.shutdown(), c.shutdown()]);
  });

  it('an older nodes table gains the metadata column', async () => {
    const prefix = `old${process.pid}`;
    await raw.query(`CREATE TABLE ${prefix}_nodes (project text NOT NULL, node_id text NOT NULL, last_seen timestamptz NOT NULL,
      eligible boolean NOT NULL, pid integer, host text, priority integer NOT NULL DEFAULT 1, lock_pid integer, PRIMARY KEY (project, node_id))`);
    const a = node(project(), 'a', { tablePrefix: prefix, metadata: { port: '7001' } });
    await a.start();
    const cols = await raw.query(`SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND column_name = 'metadata'`, [`${prefix}_nodes`]);
    expect(cols.rowCount).toBe(1);
    expect((await a.liveNodes())[0]?.metadata).toEqual({ port: '7001' });
    await a.shutdown();
  });
});
