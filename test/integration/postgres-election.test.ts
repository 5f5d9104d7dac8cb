import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PostgresElection } from '../../src/postgres.js';
import { setupKey } from '../../src/postgres/sql.js';
import { PostgresServer, postgresSkipReason } from '../../harness/postgres-server.js';

const skip = postgresSkipReason();
let server: PostgresServer;
let n = 0;
const project = () => `pg-test-${process.pid}-${++n}`;

function waitEvent<T>(subscribe: (done: (v: T) => void) => void, timeout: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeout);
    subscribe((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

const primaryOf = (e: PostgresElection, timeout = 10_000) =>
  waitEvent<number>((done) => {
    if (e.role === 'primary') return done(performance.now());
    e.on('roleChanged', (c) => c.to === 'primary' && done(performance.now()));
  }, timeout, `${e.instanceId} primary`);

const node = (url: string, p: string, id: string) => new PostgresElection({ project: p, instanceId: id, connectionString: url });

describe.skipIf(skip !== undefined)('PostgresElection on a real server', () => {
  beforeAll(async () => {
    server = await PostgresServer.start();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('one leads; graceful shutdown hands over in ms', async () => {
    const p = project();
    const a = node(server.url, p, 'a');
    await a.start();
    expect(a.role).toBe('primary');
    const first = a.epoch;
    const b = node(server.url, p, 'b');
    await b.start();
    expect(b.role).toBe('secondary');
    const promoted = primaryOf(b);
    const t0 = performance.now();
    // a may hear of b's term before its own shutdown resolves: its epoch is then b's.
    await a.shutdown();
    const t1 = await promoted;
    expect(b.epoch).toBe(first + 1);
    expect(t1 - t0).toBeLessThan(500);
    expect((await b.events(2)).map((e) => e.action)).toEqual(['elected', 'released']);
    await b.shutdown();
  });

  it('stepDown hands the role to the waiting standby', async () => {
    const p = project();
    const a = node(server.url, p, 'a');
    const b = node(server.url, p, 'b');
    await a.start();
    await b.start();
    const promoted = primaryOf(b);
    a.stepDown();
    await promoted;
    expect(a.role).toBe('secondary');
    const live = await b.liveNodes();
    expect(live.find((x) => x.instanceId === 'b')?.role).toBe('primary');
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('pg_terminate_backend of the lock makes the leader step down', async () => {
    const p = project();
    const a = node(server.url, p, 'a');
    const b = node(server.url, p, 'b');
    await a.start();
    await b.start();
    const demoted = waitEvent<string>((done) => a.on('roleChanged', (c) => c.from === 'primary' && done(c.reason)), 5000, 'a demoted');
    const promoted = primaryOf(b);
    const rows = await server.query<{ pid: number }>(
      "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = $1::bigint",
      [a.lockKey],
    );
    expect(rows).toHaveLength(1);
    await server.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    expect(await demoted).toBe('lost');
    await promoted;
    expect(b.epoch).toBeGreaterThan(1);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('a SIGKILLed leader process is replaced within ms', async () => {
    const p = project();
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'harness/postgres-node.ts', server.url, p, 'crash'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout! });
    await waitEvent<void>((done) => lines.on('line', (l) => (JSON.parse(l) as { ev: string }).ev === 'ready' && done()), 20_000, 'child ready');
    const b = node(server.url, p, 'b');
    await b.start();
    expect(b.role).toBe('secondary');
    const promoted = primaryOf(b);
    const t0 = performance.now();
    process.kill(child.pid!, 'SIGKILL');
    const t1 = await promoted;
    // Measured, not waited out: the kernel closes the socket, the session ends, the lock passes.
    // Far below every timeout of the election (maxDrift 1500, idleSessionTimeout 3000 ms).
    expect(t1 - t0).toBeLessThan(1000);
    process.stderr.write(`postgres: SIGKILL takeover ${(t1 - t0).toFixed(1)} ms\n`);
    await b.shutdown();
  });

  it('the best queued priority leads; the lock is yielded', async () => {
    const p = project();
    const mk = (id: string, priority: number) => new PostgresElection({ project: p, instanceId: id, connectionString: server.url, priority });
    const leader = mk('leader', 5);
    const worse = mk('worse', 3);
    const best = mk('best', 1);
    const followed: [string, number | undefined][] = [];
    worse.on('primaryChanged', (e) => void followed.push([e.instanceId, e.priority]));
    await leader.start();
    // Queue order: worse first, then best. A working leader keeps its role (no preemption).
    await worse.start();
    await best.start();
    expect([leader.role, worse.role, best.role]).toEqual(['primary', 'secondary', 'secondary']);
    const promotions: string[] = [];
    for (const e of [worse, best]) e.on('roleChanged', (c) => c.to === 'primary' && promotions.push(e.instanceId));
    const promoted = primaryOf(best);
    // worse hears of best's term from the notice, which may come after best's own event.
    const worseFollows = waitEvent<void>((done) => worse.on('primaryChanged', (e) => e.instanceId === 'best' && done()), 10_000, 'worse follows best');
    const epoch = leader.epoch;
    await leader.shutdown();
    await promoted;
    await worseFollows;
    // worse got the lock first (queue order), saw best queued and gave it back unused.
    expect(promotions).toEqual(['best']);
    expect(best.epoch).toBe(epoch + 1);
    expect(worse.status().postgres.yields).toBeGreaterThanOrEqual(1);
    expect(worse.role).toBe('secondary');
    // primaryChanged carries the priority, read at start and from the election notice.
    expect(followed).toEqual([
      ['leader', 5],
      ['best', 1],
    ]);
    const live = await worse.liveNodes();
    expect(live.map((x) => [x.instanceId, x.priority, x.role]).sort()).toEqual([
      ['best', 1, 'primary'],
      ['worse', 3, 'secondary'],
    ]);
    // With the best gone, the remaining node leads.
    const next = primaryOf(worse);
    await best.shutdown();
    await next;
    expect(worse.epoch).toBe(epoch + 2);
    await worse.shutdown();
  });

  it('the server restarted: the leader steps down, then one leads', async () => {
    const p = project();
    const a = node(server.url, p, 'a');
    await a.start();
    const demoted = waitEvent<string>((done) => a.on('roleChanged', (c) => c.from === 'primary' && done(c.reason)), 10_000, 'a demoted');
    await server.stop();
    expect(await demoted).toBe('lost');
    await server.restart();
    await primaryOf(a, 15_000);
    expect(a.epoch).toBe(2);
    await a.shutdown();
  });

  it('runs as a role with only the documented grants', async () => {
    const p = project();
    const prefix = `perm${process.pid}.fw`;
    const schema = prefix.split('.')[0]!;
    // The tables made beforehand by the owner, as docs/POSTGRES.md describes.
    await server.query(`CREATE SCHEMA ${schema}`);
    const setup = new PostgresElection({ project: `${p}-setup`, instanceId: 'setup', connectionString: server.url, tablePrefix: prefix });
    await setup.start();
    await setup.shutdown();
    const role = `fwapp${process.pid}`;
    for (const sql of [
      `CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`,
      `GRANT USAGE ON SCHEMA ${schema} TO ${role}`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ${prefix}_election, ${prefix}_nodes, ${prefix}_events TO ${role}`,
      `GRANT USAGE ON SEQUENCE ${prefix}_events_id_seq TO ${role}`,
    ]) {
      await server.query(sql);
    }
    const url = server.url.replace('postgres@', `${role}@`);
    const mk = (id: string) => new PostgresElection({ project: p, instanceId: id, connectionString: url, tablePrefix: prefix });
    const a = mk('a');
    const b = mk('b');
    await a.start();
    await b.start();
    expect([a.role, b.role]).toEqual(['primary', 'secondary']);
    expect((await b.liveNodes()).map((x) => x.role).sort()).toEqual(['primary', 'secondary']);
    const promoted = primaryOf(b);
    await a.shutdown();
    await promoted;
    expect(b.epoch).toBe(2);
    expect((await b.events(2)).map((e) => e.action)).toEqual(['elected', 'released']);
    await b.shutdown();
  });

  it('a release is recorded before the lock goes', async () => {
    // The history's order: a successor's 'elected' row must come after the leader's 'released'.
    // A trigger makes the 'released' insert slow: while it runs, the leader still holds the lock
    // (the unlock ran first once, and the successor's row could get the lower id).
    const prefix = `fw_order_${process.pid}_${++n}`;
    const p = project();
    const setup = new PostgresElection({ project: `${p}-setup`, instanceId: 'setup', connectionString: server.url, tablePrefix: prefix });
    await setup.start();
    await setup.shutdown();
    await server.query(`CREATE FUNCTION ${prefix}_slow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.action = 'released' THEN PERFORM pg_sleep(0.3); END IF; RETURN NEW; END $$`);
    await server.query(`CREATE TRIGGER ${prefix}_slow BEFORE INSERT ON ${prefix}_events FOR EACH ROW EXECUTE FUNCTION ${prefix}_slow()`);
    const mk = (id: string) => new PostgresElection({ project: p, instanceId: id, connectionString: server.url, tablePrefix: prefix });
    const a = mk('a');
    const b = mk('b');
    await a.start();
    await b.start();
    const promoted = primaryOf(b);
    const stopping = a.shutdown();
    // Bounded wait until a's release statement sleeps in the trigger.
    const sleeping = async () => (await server.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'")).length > 0;
    for (let i = 0; i < 400 && !(await sleeping()); i++) await new Promise((r) => setTimeout(r, 5));
    expect(await sleeping()).toBe(true);
    // The sleeping session is the one holding the lock.
    const holders = await server.query<{ n: string }>(
      "SELECT count(*)::text AS n FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND s.wait_event = 'PgSleep'",
    );
    expect(holders[0]!.n).toBe('1');
    expect(b.role).toBe('secondary');
    await stopping;
    await promoted;
    expect((await b.events(2)).map((e) => `${e.action} ${e.epoch}`)).toEqual(['elected 2', 'released 1']);
    await b.shutdown();
  });

  it('shutdown ends a connection still checking the schema', async () => {
    // Found in a failover to an empty server: a node shut down while its control connection was
    // still creating the tables waited for that connection for ever. Here the schema step is held
    // on purpose: an admin session holds the setup lock of a fresh table prefix, so both of the
    // node's connections wait in CREATE TABLE when shutdown() comes.
    const prefix = `fw_setup_${process.pid}_${++n}`;
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      await admin.query(`SELECT pg_advisory_lock(${setupKey(prefix)})`);
      const a = new PostgresElection({ project: project(), instanceId: 'a', connectionString: server.url, tablePrefix: prefix });
      const started = a.start().then(
        () => 'started',
        (error: Error) => error.message,
      );
      // Both connections queue behind the admin's lock (bounded wait for the server to show it).
      const waiting = async () =>
        (await server.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).map((r) => r.pid);
      for (let i = 0; i < 200 && (await waiting()).length !== 2; i++) await new Promise((r) => setTimeout(r, 25));
      const waiters = await waiting();
      expect(waiters).toHaveLength(2);
      const t0 = performance.now();
      const done = await Promise.race([a.shutdown().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5000))]);
      expect(done).toBe(true);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(a.role).toBe('stopped');
      expect(await started).toMatch(/shut down before/);
      // The server notices the closed sockets only once its waits end: then both sessions go.
      await admin.query(`SELECT pg_advisory_unlock(${setupKey(prefix)})`);
      const left = async () =>
        (await server.query<{ n: string }>('SELECT count(*)::text AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])', [waiters]))[0]!.n;
      for (let i = 0; i < 200 && (await left()) !== '0'; i++) await new Promise((r) => setTimeout(r, 25));
      expect(await left()).toBe('0');
    } finally {
      await admin.end();
    }
  });

  it('examples/postgres-fenced-write.ts refuses a stale write', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/postgres-fenced-write.ts'], {
      env: { ...process.env, DATABASE_URL: server.url },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    const code = await waitEvent<number | null>((done) => child.once('exit', (c) => done(c)), 20_000, 'example exit');
    expect(out).toMatch(/first leads at epoch 1: write applied/);
    expect(out).toMatch(/second leads at epoch 2: write applied/);
    expect(out).toMatch(/stale write of epoch 1: refused/);
    expect(code).toBe(0);
  });
});
