/**
 * `status --postgres` and `watch --postgres` as real OS processes (`node bin/failover-watch.js`)
 * against a real, throwaway PostgreSQL cluster started by this file (harness/postgres-server.ts),
 * with the election run by PostgresElection nodes in this process or in a child process
 * (harness/postgres-node.ts, for a real SIGKILL). Every wait is bounded and driven by a process's
 * output or exit; only processes this file started are stopped, by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/child-runtime.js';
import { CliProcesses, runCli } from '../../harness/cli-process.js';
import { PostgresServer, postgresSkipReason } from '../../harness/postgres-server.js';
import { PostgresElection } from '../../src/postgres.js';

const skip = postgresSkipReason();
let server: PostgresServer;
let seq = 0;
const elections: PostgresElection[] = [];
const children: ChildProcess[] = [];
const cli = new CliProcesses();
/** Bound on one CLI process (tsx compiles the sources on first use). */
const PROCESS_TIMEOUT = 20_000;

beforeAll(async () => {
  if (skip === undefined) server = await PostgresServer.start();
});
afterEach(async () => {
  await cli.stopAll();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
  await Promise.all(elections.splice(0).map((e) => e.shutdown()));
});
afterAll(async () => {
  await server?.destroy();
});

const project = (what: string): string => `cli-${what}-${++seq}`;

async function node(p: string, id: string, tablePrefix?: string, metadata?: Record<string, string>): Promise<PostgresElection> {
  const e = new PostgresElection({
    project: p,
    instanceId: id,
    connectionString: server.url,
    ...(tablePrefix === undefined ? {} : { tablePrefix }),
    ...(metadata === undefined ? {} : { metadata }),
  });
  elections.push(e);
  await e.start();
  return e;
}

/** A leader in a child process (harness/postgres-node.ts); resolves once it leads. */
async function childLeader(p: string, id: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'harness/postgres-node.ts', server.url, p, id], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} never led`)), PROCESS_TIMEOUT);
    lines.on('line', (l) => {
      const e = JSON.parse(l) as { ev: string; role?: string };
      if (e.ev !== 'ready') return;
      clearTimeout(timer);
      if (e.role === 'primary') resolve();
      else reject(new Error(`${id} is ${e.role}`));
    });
  });
  return child;
}

describe.skipIf(skip !== undefined)('status --postgres', () => {
  it('exits 0 and names the leader, its epoch and the live nodes', async () => {
    const p = project('status');
    const a = await node(p, 'alpha', undefined, { port: '7001', zone: 'a' });
    await node(p, 'beta');
    expect(a.role).toBe('primary');
    const r = await runCli(['status', '--postgres', server.url, '--project', p]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^leader alpha of ${p}, revision ${a.epoch} since \\S+Z; metadata port=7001 zone=a; live: alpha \\(priority 1\\) \\*, beta \\(priority 1\\)\\n$`),
    );
  });

  it('--json: the Redis status fields, no lease', async () => {
    const p = project('json');
    const a = await node(p, 'alpha', undefined, { port: '7001' });
    const r = await runCli(['status', '--postgres', server.url, '--project', p, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ ok: true, backend: 'postgres', project: p, instanceId: 'alpha', epoch: a.epoch, revision: a.epoch, priority: 1, leaseTtlMs: null, lastRevision: a.epoch });
    expect(j.endpoint).toBe(`postgres://***@127.0.0.1:${server.port}/postgres ${p}`);
    expect(typeof j.since).toBe('number');
    expect(j).toMatchObject({ metadata: { port: '7001' }, metadataDropped: 0 });
    expect(j.liveNodes).toEqual([{ nodeId: 'alpha', priority: 1, eligible: true, lastSeen: expect.any(Number), isLeader: true, metadata: { port: '7001' } }]);
  });

  it('watch shows metadata changes; status drops bad ones', async () => {
    const p = project('meta');
    // Presence written once a minute: the bad row below is not rewritten before status reads it.
    const a = new PostgresElection({ project: p, instanceId: 'alpha', connectionString: server.url, presenceInterval: 60_000, metadata: { port: '1' } });
    elections.push(a);
    await a.start();
    const watch = cli.spawn(['watch', '--postgres', server.url, '--project', p, '--json']);
    const first = await watch.waitFor((e) => e.event === 'primaryChanged', PROCESS_TIMEOUT, 'primaryChanged alpha');
    expect(first).toMatchObject({ instanceId: 'alpha', metadata: { port: '1' } });
    a.setMetadata({ port: '2' });
    const changed = await watch.waitFor((e) => e.event === 'primaryMetadataChanged', 5000, 'the change');
    expect(changed).toMatchObject({ instanceId: 'alpha', epoch: a.epoch, metadata: { port: '2' } });
    // Written by hand into the presence row, breaking the rules: null and counted.
    const { default: pg } = await import('pg');
    const raw = new pg.Client({ connectionString: server.url });
    await raw.connect();
    try {
      await raw.query(`UPDATE failover_watch_nodes SET metadata = '{"port":2}' WHERE project = $1 AND node_id = 'alpha'`, [p]);
    } finally {
      await raw.end();
    }
    const st = await runCli(['status', '--postgres', server.url, '--project', p, '--json']);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ instanceId: 'alpha', metadata: null, metadataDropped: 1 });
    expect(a.role).toBe('primary');
  });

  it('exits 1 when nobody leads, tables or not', async () => {
    const fresh = await runCli(['status', '--postgres', server.url, '--project', 'p', '--table-prefix', 'never_created']);
    expect(fresh.code, fresh.stderr).toBe(1);
    expect(fresh.stdout).toBe('no leader in p: the lock is free (last revision 0); no live nodes registered\n');
    const p = project('none');
    const a = await node(p, 'alpha');
    await a.shutdown();
    const r = await runCli(['status', '--postgres', server.url, '--project', p, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, backend: 'postgres', instanceId: null, epoch: null, lastRevision: 1, liveNodes: [] });
  });

  it('reads only: takes no lock, creates no table', async () => {
    const r = await runCli(['status', '--postgres', server.url, '--project', 'p', '--table-prefix', 'ro_check', '--json']);
    expect(r.code).toBe(1);
    const tables = await server.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_tables WHERE tablename LIKE 'ro_check%'`);
    expect(tables[0]?.n).toBe('0');
    // While a leader holds the lock, the observer's session holds no advisory lock of its own.
    const p = project('locks');
    await node(p, 'alpha');
    const watch = cli.spawn(['watch', '--postgres', server.url, '--project', p, '--json']);
    await watch.waitFor((e) => e.event === 'primaryChanged', PROCESS_TIMEOUT, 'primaryChanged alpha');
    const held = await server.query<{ application_name: string }>(
      `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'`,
    );
    expect(held.map((h) => h.application_name)).not.toContain('failover-watch observer');
    const sessions = await server.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = 'failover-watch observer'`);
    expect(sessions[0]?.n).toBe('1');
  });

  it('status and watch work as a SELECT-only role', async () => {
    const p = project('viewer');
    const a = await node(p, 'alpha');
    await server.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fw_viewer') THEN CREATE ROLE fw_viewer LOGIN; END IF; END $$`);
    await server.query('GRANT SELECT ON failover_watch_election, failover_watch_nodes, failover_watch_events TO fw_viewer');
    const url = `postgres://fw_viewer@127.0.0.1:${server.port}/postgres`;
    const r = await runCli(['status', '--postgres', url, '--project', p, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, instanceId: 'alpha', epoch: a.epoch });
    const watch = cli.spawn(['watch', '--postgres', url, '--project', p, '--json']);
    await watch.waitFor((e) => e.event === 'primaryChanged' && e.instanceId === 'alpha', PROCESS_TIMEOUT, 'primaryChanged alpha');
    await a.shutdown();
    await watch.waitFor((e) => e.event === 'primaryLost', 5000, 'primaryLost alpha');
    expect(watch.stderr).not.toContain('failed');
  });

  it('exits 1 when PostgreSQL does not answer', async () => {
    const { freePort } = await import('../../harness/cluster.js');
    const r = await runCli(['status', '--postgres', `postgres://u@127.0.0.1:${await freePort()}/db`, '--project', 'p', '--timeout', '500']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^failover-watch: PostgreSQL postgres:\/\/\*\*\*@127\.0\.0\.1:\d+\/db did not answer within 500 ms/);
  });
});

describe.skipIf(skip !== undefined)('watch --postgres', () => {
  it('prints primaryChanged after the leader is SIGKILLed', async () => {
    const p = project('watch');
    const child = await childLeader(p, 'alpha');
    const b = await node(p, 'beta');
    expect(b.role).toBe('secondary');
    const watch = cli.spawn(['watch', '--postgres', server.url, '--project', p, '--json']);
    const first = await watch.waitFor((e) => e.event === 'primaryChanged', PROCESS_TIMEOUT, 'primaryChanged alpha');
    expect(first).toMatchObject({ instanceId: 'alpha', previous: null, seq: null, pid: null, host: null, ttlMs: null });
    const t0 = performance.now();
    process.kill(child.pid!, 'SIGKILL');
    const taken = await watch.waitFor((e) => e.event === 'primaryChanged' && e.instanceId === 'beta', 5000, 'primaryChanged beta');
    const ms = performance.now() - t0;
    expect(taken).toMatchObject({ previous: 'alpha', ttlMs: null, epoch: (first.epoch as number) + 1 });
    expect(b.role).toBe('primary');
    // The lock is released as the dead session closes, and beta's NOTIFY wakes the watch.
    expect(ms).toBeLessThan(2000);
    await b.shutdown();
    const lost = await watch.waitFor((e) => e.event === 'primaryLost', 5000, 'primaryLost beta');
    expect(lost).toMatchObject({ instanceId: 'beta', epoch: taken.epoch });
    expect(watch.nonJson).toEqual([]);
  });

  it('prints primaryLost when a lone leader is SIGKILLed', async () => {
    // No successor, so no NOTIFY: the bounded poll sees the lock free.
    const p = project('lone');
    const child = await childLeader(p, 'alpha');
    const watch = cli.spawn(['watch', '--postgres', server.url, '--project', p]);
    const lines = createInterface({ input: watch.child.stdout! });
    const seen: string[] = [];
    const line = (pattern: RegExp, timeout: number): Promise<string> =>
      new Promise((resolve, reject) => {
        const hit = seen.find((l) => pattern.test(l));
        if (hit !== undefined) return resolve(hit);
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeout} ms: ${seen.join(' | ')} ${watch.stderr}`)), timeout);
        lines.on('line', (l) => {
          if (!pattern.test(l)) return;
          clearTimeout(timer);
          resolve(l);
        });
      });
    lines.on('line', (l) => seen.push(l));
    expect(await line(/ primaryChanged alpha revision \d+$/, PROCESS_TIMEOUT)).toMatch(/^\S+Z primaryChanged alpha revision \d+$/);
    process.kill(child.pid!, 'SIGKILL');
    expect(await line(/ primaryLost alpha revision \d+: /, 5000)).toMatch(/primaryLost alpha revision \d+: the lease is free$/);
  });
  it('follows the election across a server restart', async () => {
    // Last in this file's server tests: the server goes down for a moment.
    const p = project('restart');
    const a = await node(p, 'alpha');
    const watch = cli.spawn(['watch', '--postgres', server.url, '--project', p, '--json']);
    await watch.waitFor((e) => e.event === 'primaryChanged' && e.epoch === a.epoch, PROCESS_TIMEOUT, 'primaryChanged alpha');
    await server.stop();
    await server.restart();
    // alpha lost its lock with its session and takes it again in a new term; the watch's
    // session is opened again at its next read.
    const again = await watch.waitFor((e) => e.event === 'primaryChanged' && (e.epoch as number) > 1, 20_000, 'primaryChanged in a new term');
    expect(again).toMatchObject({ instanceId: 'alpha', epoch: 2 });
    // Whether a read failed meanwhile depends on whether a 250 ms poll fell in the restart: a
    // fast restart falls between two, so the failure message is not asserted.
  });
});

describe('usage errors (etcd, PostgreSQL)', () => {
  const cases: Array<[string, string[], string]> = [
    ['--etcd without --project', ['status', '--etcd', 'http://127.0.0.1:1'], '--etcd needs --project NAME'],
    ['--postgres with --redis', ['watch', '--postgres', 'postgres://h/db', '--redis', 'redis://h', '--project', 'p'], 'give exactly one backend'],
    ['not an etcd URL', ['status', '--etcd', 'etcd://h:2379', '--project', 'p'], '--etcd expects http:// or https://'],
    ['not a postgres URL', ['watch', '--postgres', 'mysql://h/db', '--project', 'p'], '--postgres must be a postgres://'],
    ['--table-prefix without --postgres', ['status', '--etcd', 'http://h:2379', '--project', 'p', '--table-prefix', 'x'], '--table-prefix is for the PostgreSQL backend'],
    ['--etcd-prefix without --etcd', ['status', '--postgres', 'postgres://h/db', '--project', 'p', '--etcd-prefix', '/x'], '--etcd-prefix is for the etcd backend'],
    ['an etcd project with a colon', ['status', '--etcd', 'http://h:2379', '--project', 'a:b'], '--project expects 1-128 characters'],
    ['a bad table prefix', ['watch', '--postgres', 'postgres://h/db', '--project', 'p', '--table-prefix', 'Drop;'], '--table-prefix expects a lowercase SQL identifier'],
  ];
  it.each(cases)('%s exits 2 with a message', async (_name, args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });
});
