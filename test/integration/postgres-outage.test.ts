/**
 * Outages of the PostgreSQL election against a real server (one per file): the leader's process
 * paused (SIGSTOP) and woken, and the server itself paused and resumed. Bounds are those of
 * docs/POSTGRES.md with the default settings (confirmInterval 500, maxDrift 1500,
 * idleSessionTimeout 3000 ms).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PartitionProxy } from '../../harness/partition-proxy.js';
import { PostgresServer, postgresSkipReason } from '../../harness/postgres-server.js';
import { DEFAULTS, PostgresElection } from '../../src/postgres.js';
import type { ElectionRoleChange } from '../../src/election/contract.js';

const skip = postgresSkipReason();
let server: PostgresServer;
let n = 0;
const project = () => `pg-outage-${process.pid}-${++n}`;
const children: ChildProcess[] = [];
const nodes: PostgresElection[] = [];
const proxies: PartitionProxy[] = [];

interface Line {
  readonly ev: string;
  readonly at: number;
  readonly epoch?: number;
  readonly to?: string;
  readonly reason?: string;
}

/** A node in a child process; `lines` grows as it prints, `next` waits for a line. */
function child(url: string, p: string, id: string, env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'harness/postgres-node.ts', url, p, id], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  children.push(proc);
  const lines: Line[] = [];
  const waiters: { pred: (l: Line) => boolean; done: (l: Line) => void }[] = [];
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    const line = JSON.parse(text) as Line;
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.pred(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.done(line);
      }
    }
  });
  const next = (pred: (l: Line) => boolean, timeout: number, what: string): Promise<Line> =>
    new Promise((resolve, reject) => {
      const seen = lines.find(pred);
      if (seen !== undefined) return resolve(seen);
      const timer = setTimeout(() => reject(new Error(`${id}: no ${what} within ${timeout} ms`)), timeout);
      waiters.push({ pred, done: (l) => (clearTimeout(timer), resolve(l)) });
    });
  return { proc, lines, next };
}

function change(e: PostgresElection, pred: (c: ElectionRoleChange) => boolean, timeout: number, what: string): Promise<ElectionRoleChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${e.instanceId}: no ${what} within ${timeout} ms (role ${e.role})`)), timeout);
    const on = (c: ElectionRoleChange) => {
      if (!pred(c)) return;
      clearTimeout(timer);
      e.off('roleChanged', on);
      resolve(c);
    };
    e.on('roleChanged', on);
  });
}

const node = (p: string, id: string) => {
  const e = new PostgresElection({ project: p, instanceId: id, connectionString: server.url });
  nodes.push(e);
  return e;
};

describe.skipIf(skip !== undefined)('PostgreSQL outages', () => {
  beforeAll(async () => {
    server = await PostgresServer.start();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGCONT');
        c.kill('SIGKILL');
      }
    }
    server?.signalAll('SIGCONT');
    for (const p of proxies) p.heal();
    await Promise.all(nodes.splice(0).map((e) => e.shutdown()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('paused leader: replaced after idle_session_timeout', async () => {
    const p = project();
    const a = child(server.url, p, 'paused', { FW_ACT_INTERVAL: '20' });
    await a.next((l) => l.ev === 'ready', 20_000, 'ready');
    const first = await a.next((l) => l.ev === 'act', 5000, 'act');
    const b = node(p, 'b');
    await b.start();
    expect(b.role).toBe('secondary');
    const taken = change(b, (c) => c.to === 'primary', DEFAULTS.idleSessionTimeout + 5000, 'promotion');
    const stoppedAt = performance.now();
    a.proc.kill('SIGSTOP');
    const promotion = await taken;
    const takeover = performance.now() - stoppedAt;
    // The paused process's connection stays open (its kernel still answers TCP), so only
    // idle_session_timeout, counted from the end of its last confirm, ends the session.
    expect(takeover).toBeGreaterThan(DEFAULTS.maxDrift);
    expect(takeover).toBeGreaterThan(DEFAULTS.idleSessionTimeout - DEFAULTS.confirmInterval - 500);
    expect(takeover).toBeLessThan(DEFAULTS.idleSessionTimeout + 2000);
    expect(promotion.epoch).toBe(first.epoch! + 1);
    process.stderr.write(`postgres: paused-leader takeover ${Math.round(takeover)} ms\n`);

    // Woken, it learns it lost before it acts: no act after SIGCONT, the signal aborted, demoted.
    const wokenAt = Date.now();
    a.proc.kill('SIGCONT');
    const demoted = await a.next((l) => l.ev === 'role' && l.to === 'secondary', 5000, 'demotion');
    expect(['drift', 'lost']).toContain(demoted.reason);
    await a.next((l) => l.ev === 'aborted' && l.epoch === first.epoch, 5000, 'abort');
    await a.next((l) => l.ev === 'demote' && l.epoch === first.epoch, 5000, 'onDemote');
    expect(a.lines.filter((l) => l.ev === 'act' && l.at >= wokenAt)).toEqual([]);
    expect(b.role).toBe('primary');
  });

  it('partitioned leader steps down before another leads', async () => {
    const proxy = await PartitionProxy.start(server.port);
    proxies.push(proxy);
    const p = project();
    // a reaches the server only through the proxy; b directly.
    const a = new PostgresElection({ project: p, instanceId: 'a', connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/postgres` });
    nodes.push(a);
    const b = node(p, 'b');
    await a.start();
    await b.start();
    expect([a.role, b.role]).toEqual(['primary', 'secondary']);
    const left = change(a, (c) => c.from === 'primary', DEFAULTS.maxDrift + 3000, 'step-down');
    const led = change(b, (c) => c.to === 'primary', DEFAULTS.idleSessionTimeout + 5000, 'promotion');
    const cutAt = Date.now();
    proxy.partition();
    const [stepDown, promotion] = await Promise.all([left, led]);
    // No reset reaches either side: a steps down at maxDrift, the server ends its idle session
    // at idle_session_timeout, and only then does b lead.
    expect(stepDown.reason).toBe('drift');
    expect(stepDown.at - cutAt).toBeLessThan(DEFAULTS.maxDrift + 1000);
    expect(promotion.at - stepDown.at).toBeGreaterThan(500);
    expect(promotion.at - cutAt).toBeLessThan(DEFAULTS.idleSessionTimeout + 2000);
    process.stderr.write(`postgres: partition: step-down ${stepDown.at - cutAt} ms, takeover ${promotion.at - cutAt} ms after the cut\n`);
    // Healed: a hears of b's term and stays secondary.
    const follows = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('a never followed b')), 10_000);
      a.on('primaryChanged', (e) => e.instanceId === 'b' && (clearTimeout(timer), resolve()));
    });
    proxy.heal();
    await follows;
    expect([a.role, b.role]).toEqual(['secondary', 'primary']);
  });

  it('server failover: leaders step down, the next term follows', async () => {
    // A second server stands for the promoted replica: the tables and the election row as
    // replicated. (This test's second initdb is what a failover needs.)
    const replica = await PostgresServer.start();
    try {
      const proxy = await PartitionProxy.start(server.port);
      proxies.push(proxy);
      const p = project();
      const url = `postgres://postgres@127.0.0.1:${proxy.port}/postgres`;
      const mk = (id: string) => {
        const e = new PostgresElection({ project: p, instanceId: id, connectionString: url });
        nodes.push(e);
        return e;
      };
      const a = mk('a');
      const b = mk('b');
      await a.start();
      await b.start();
      const epoch = a.epoch;
      const tables = new PostgresElection({ project: `${p}-tables`, instanceId: 'tables', connectionString: replica.url });
      await tables.start();
      await tables.shutdown();
      await replica.query('INSERT INTO failover_watch_election (project, epoch, leader) VALUES ($1, $2, $3)', [p, epoch, 'a']);
      const lost = new Promise<ElectionRoleChange>((resolve) => a.on('roleChanged', (c) => c.from === 'primary' && resolve(c)));
      const next = Promise.any([a, b].map((e) => change(e, (c) => c.to === 'primary', 10_000, 'promotion')));
      proxy.failover(replica.port);
      // The old server's sessions are gone: the leader cannot know it holds a lock any more.
      expect((await lost).reason).toBe('lost');
      const promotion = await next;
      expect(promotion.epoch).toBe(epoch + 1);
      expect([a, b].filter((e) => e.role === 'primary')).toHaveLength(1);
      const held = await replica.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_locks WHERE locktype = 'advisory' AND granted");
      expect(held[0]!.n).toBe('1');

      // A failover to a database without the election's tables (nothing replicated): the nodes
      // create them again and the epoch starts over, which is why fencing must check a row of the
      // same database (docs/POSTGRES.md, Limits).
      await server.query('DROP TABLE failover_watch_election, failover_watch_nodes, failover_watch_events');
      const again = Promise.any([a, b].map((e) => change(e, (c) => c.to === 'primary' && c.epoch === 1, 15_000, 'a term on the empty server')));
      proxy.failover(server.port);
      expect((await again).epoch).toBe(1);
      const leaders = [a, b].filter((e) => e.role === 'primary');
      expect(leaders).toHaveLength(1);
      expect(leaders[0]!.epoch).toBe(1);
    } finally {
      await Promise.all(nodes.splice(0).map((e) => e.shutdown()));
      await replica.destroy();
    }
  }, 60_000); // a second initdb and server start: tens of seconds on a busy 2-core host

  it('shutdown ends in bound while the server is paused', async () => {
    const p = project();
    const a = node(p, 'a');
    const b = node(p, 'b');
    await a.start();
    await b.start();
    server.signalAll('SIGSTOP');
    const t0 = performance.now();
    // Nothing answers: each connection gets connectTimeout to close, then its socket is destroyed.
    const bound = DEFAULTS.connectTimeout * 3 + 2000;
    const done = await Promise.race([
      Promise.all([a.shutdown(), b.shutdown()]).then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), bound)),
    ]);
    expect(done).toBe(true);
    expect([a.role, b.role]).toEqual(['stopped', 'stopped']);
    process.stderr.write(`postgres: shutdown with the server paused took ${Math.round(performance.now() - t0)} ms\n`);
    server.signalAll('SIGCONT');
  });

  it('paused server: leader steps down, none leads, resumes', async () => {
    const p = project();
    const a = node(p, 'a');
    const b = node(p, 'b');
    await a.start();
    await b.start();
    expect(a.role).toBe('primary');
    const epoch = a.epoch;
    const promotions: ElectionRoleChange[] = [];
    for (const e of [a, b]) e.on('roleChanged', (c) => c.to === 'primary' && promotions.push(c));
    const left = change(a, (c) => c.from === 'primary', DEFAULTS.maxDrift + 3000, 'step-down');
    const pausedAt = performance.now();
    server.signalAll('SIGSTOP');
    const stepDown = await left;
    const after = performance.now() - pausedAt;
    // It cannot confirm its session: it steps down at maxDrift after its last confirm was sent.
    expect(stepDown.reason).toBe('drift');
    expect(after).toBeGreaterThan(DEFAULTS.maxDrift - DEFAULTS.confirmInterval - 250);
    expect(after).toBeLessThan(DEFAULTS.maxDrift + 1000);
    expect(a.health().ok).toBe(false);
    // Keep the server paused a while longer: nobody may lead without it.
    const lead = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1500);
      for (const e of [a, b]) e.once('roleChanged', (c) => c.to === 'primary' && (clearTimeout(timer), resolve()));
    });
    await lead;
    expect(promotions).toEqual([]);
    expect([a.role, b.role]).toEqual(['secondary', 'secondary']);
    process.stderr.write(`postgres: paused-server step-down after ${Math.round(after)} ms\n`);

    // Resumed: the election goes on with a new term.
    const resumed = Promise.any([a, b].map((e) => change(e, (c) => c.to === 'primary', 10_000, 'promotion')));
    server.signalAll('SIGCONT');
    const next = await resumed;
    expect(next.epoch).toBeGreaterThan(epoch);
    expect([a, b].filter((e) => e.role === 'primary')).toHaveLength(1);
  });
});
