/**
 * A real, throwaway PostgreSQL cluster for tests and benchmarks: `initdb` in a temporary
 * directory, `postgres` on a free loopback port with its unix socket in that directory, trust
 * authentication for the `postgres` role. PostgreSQL refuses to run as root, so when the suite
 * runs as root the cluster belongs to a dedicated system account (`fwpostgres`, created with
 * `useradd` when missing) and the server runs under its uid/gid. Paused (SIGSTOP of every
 * process of the cluster), resumed, killed and restarted by pid. Never mocks.
 *
 * @module
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './cluster.js';

const ACCOUNT = 'fwpostgres';

/** The directory holding initdb and postgres: `PG_BIN`, /usr/local/bin, or Debian's /usr/lib/postgresql/N/bin. */
export function postgresBinDir(): string | undefined {
  const candidates = [process.env.PG_BIN, '/usr/local/bin', '/usr/bin'];
  try {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    // not Debian's layout
  }
  return candidates.find((d) => d !== undefined && existsSync(join(d, 'initdb')) && existsSync(join(d, 'postgres')));
}

function account(): { uid: number; gid: number } | string {
  if (process.getuid?.() !== 0) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const id = (flag: string) => Number(execFileSync('id', [flag, ACCOUNT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', ACCOUNT], { encoding: 'utf8' });
    try {
      // Another test file may have created it at the same moment (useradd then fails): look again.
      return { uid: id('-u'), gid: id('-g') };
    } catch {
      return `cannot create the ${ACCOUNT} account: ${r.stderr || r.error?.message}`;
    }
  }
}

/** Returns a reason to skip (printed) or undefined when PostgreSQL can run here; throws under CI. */
export function postgresSkipReason(): string | undefined {
  const bin = postgresBinDir();
  const who = account();
  const why = bin === undefined ? 'initdb/postgres not found (apt-get install -y postgresql, or set PG_BIN)' : typeof who === 'string' ? who : undefined;
  if (why === undefined) return undefined;
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') throw new Error(`CI is set but the PostgreSQL tests cannot run: ${why}`);
  const reason = `SKIPPING the PostgreSQL tests: ${why}`;
  process.stderr.write(`\n*** ${reason} ***\n\n`);
  return reason;
}

/** One PostgreSQL server on 127.0.0.1. */
export class PostgresServer {
  readonly port: number;
  readonly dir: string;
  readonly #bin: string;
  readonly #owner: { uid: number; gid: number };
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  log = '';

  private constructor(port: number, dir: string, bin: string, owner: { uid: number; gid: number }) {
    this.port = port;
    this.dir = dir;
    this.#bin = bin;
    this.#owner = owner;
  }

  /** initdb, then start on a free port; waits until it accepts a query. */
  static async start(timeout = 30_000): Promise<PostgresServer> {
    const bin = postgresBinDir();
    const owner = account();
    if (bin === undefined || typeof owner === 'string') throw new Error(`PostgreSQL cannot run here: ${String(owner)}`);
    const dir = mkdtempSync(join(tmpdir(), 'fw-pg-'));
    chownSync(dir, owner.uid, owner.gid);
    const r = spawnSync(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--no-instructions'], {
      uid: owner.uid,
      gid: owner.gid,
      cwd: dir,
      encoding: 'utf8',
      timeout,
    });
    if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr || r.error?.message}`);
    const server = new PostgresServer(await freePort(), dir, bin, owner);
    await server.restart(timeout);
    return server;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** (Re)starts the server on the same port and data directory; waits until it answers. */
  async restart(timeout = 30_000): Promise<void> {
    if (this.running) throw new Error(`postgres on ${this.port} is still running`);
    const child = spawn(
      join(this.#bin, 'postgres'),
      ['-D', join(this.dir, 'data'), '-p', String(this.port), '-h', '127.0.0.1', '-k', this.dir, '-c', 'fsync=off', '-c', 'max_connections=200', '-c', 'log_min_messages=warning'],
      { uid: this.#owner.uid, gid: this.#owner.gid, cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    const append = (c: Buffer) => {
      if (this.log.length < 50_000) this.log += c.toString('utf8');
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = performance.now() + timeout;
    for (let i = 0; i < 10_000; i++) {
      if (!this.running) throw new Error(`postgres exited at start: ${this.log.slice(-2000)}`);
      if (await this.ready()) return;
      if (performance.now() > deadline) {
        this.kill();
        throw new Error(`postgres on ${this.port} did not answer within ${timeout} ms: ${this.log.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** True when a fresh connection can run `SELECT 1` within 1 s. */
  async ready(): Promise<boolean> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** Runs one statement on a fresh admin connection. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query<R>(text, values)).rows;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** The pids of the postmaster's children (the backends and helpers). */
  children(): number[] {
    const pid = this.pid;
    if (pid === undefined) return [];
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** SIGSTOP (pause) or SIGCONT (resume) of the postmaster and every child. */
  signalAll(signal: 'SIGSTOP' | 'SIGCONT'): void {
    const pid = this.pid;
    if (pid === undefined) return;
    for (const p of [pid, ...this.children()]) {
      try {
        process.kill(p, signal);
      } catch {
        // gone already
      }
    }
  }

  /** Fast shutdown (SIGINT) and wait for the exit. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.signalAll('SIGCONT');
    process.kill(this.pid!, 'SIGINT');
    await this.#exited;
  }

  kill(): void {
    if (this.running) process.kill(this.pid!, 'SIGKILL');
  }

  /** Stops the server and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
