/**
 * Real `redis-server` processes for tests and benchmarks: each on a free loopback port, without
 * persistence, started, paused (SIGSTOP), resumed, killed and restarted by pid. Never mocks.
 *
 * When `redis-server` is not installed, {@link redisAvailability} says so, so that a test file
 * can skip with that reason; with the environment variable `CI` set it reports the absence as a
 * failure instead (CI must never skip the Redis tests).
 *
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { freePort } from './cluster.js';

/** The command to run; `REDIS_SERVER` overrides it. */
export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';

/** Whether redis-server can run here, and if not, why. */
export function redisAvailability(): { available: true; version: string } | { available: false; reason: string } {
  const r = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined || r.status !== 0) {
    const why = r.error !== undefined ? r.error.message : `exit ${r.status}: ${r.stderr}`;
    return {
      available: false,
      reason: `${REDIS_SERVER} cannot run (${why}); install it (apt-get install -y redis-server) or set REDIS_SERVER`,
    };
  }
  return { available: true, version: r.stdout.trim() };
}

/**
 * Decides whether the Redis tests run. Returns a skip reason (after printing it), or undefined
 * when they run. Throws when redis-server is missing and `CI` is set.
 */
export function redisSkipReason(): string | undefined {
  const a = redisAvailability();
  if (a.available) return undefined;
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') {
    throw new Error(`CI is set but the Redis tests cannot run: ${a.reason}`);
  }
  const reason = `SKIPPING the Redis tests: ${a.reason}`;
  process.stderr.write(`\n*** ${reason} ***\n\n`);
  return reason;
}

/** A TLS-only server (`--port 0 --tls-port PORT`); files and PEMs as made by `redis-tls.ts`. */
export interface RedisTlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
  /** PEM of the CA, to check the server's certificate. */
  readonly ca: string;
  /** `--tls-auth-clients yes`: clients must present a certificate signed by the CA. */
  readonly authClients: boolean;
  /** The client pair the readiness probe presents (needed with `authClients`). */
  readonly clientCert?: string;
  readonly clientKey?: string;
}

/** Sends PING on a fresh socket (TLS when `tls` is given); resolves true on +PONG within `timeout` ms. */
export function ping(port: number, timeout = 500, tls?: RedisTlsSettings): Promise<boolean> {
  return new Promise((resolve) => {
    const socket =
      tls === undefined
        ? createConnection({ host: '127.0.0.1', port })
        : tlsConnect({ host: '127.0.0.1', port, ca: tls.ca, cert: tls.clientCert, key: tls.clientKey });
    let data = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeout);
    socket.on(tls === undefined ? 'connect' : 'secureConnect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      // A server that requires AUTH answers -NOAUTH: it is up all the same.
      if (data.includes('\r\n')) done(data.startsWith('+PONG') || data.startsWith('-NOAUTH'));
    });
    socket.on('error', () => done(false));
  });
}

/** One redis-server process on 127.0.0.1. */
export class RedisServer {
  readonly port: number;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  log = '';

  /** Extra redis-server arguments (e.g. `['--requirepass', 'secret']`). */
  readonly args: readonly string[];
  /** Set for a TLS-only server: `port` is then its TLS port and no plain port is open. */
  readonly tls: RedisTlsSettings | undefined;

  private constructor(port: number, args: readonly string[], tls: RedisTlsSettings | undefined) {
    this.port = port;
    this.args = args;
    this.tls = tls;
  }

  /** Starts a server on a free port and waits until it answers PING (over TLS with `tls`). */
  static async start(timeout = 10_000, args: readonly string[] = [], tls?: RedisTlsSettings): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), args, tls);
    await server.restart(timeout);
    return server;
  }

  /** `redis://` or, for a TLS server, `rediss://127.0.0.1:PORT`. */
  get url(): string {
    return `${this.tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** (Re)starts the process on the same port; waits until it answers PING. */
  async restart(timeout = 10_000): Promise<void> {
    if (this.running) throw new Error(`redis-server on ${this.port} is still running`);
    const tls = this.tls;
    const ports =
      tls === undefined
        ? ['--port', String(this.port)]
        : ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile,
           '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', tls.authClients ? 'yes' : 'no'];
    const child = spawn(
      REDIS_SERVER,
      [...ports, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning', ...this.args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    const append = (chunk: Buffer) => {
      if (this.log.length < 50_000) this.log += chunk.toString('utf8');
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = performance.now() + timeout;
    for (;;) {
      if (!this.running) throw new Error(`redis-server on ${this.port} exited at start: ${this.log.slice(-2000)}`);
      if (await ping(this.port, 200, tls)) return;
      if (performance.now() > deadline) {
        this.kill();
        throw new Error(`redis-server on ${this.port} did not answer PING within ${timeout} ms: ${this.log.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 20)); // polling a server that is starting, bounded above
    }
  }

  /** SIGSTOP: the process keeps its sockets open and answers nothing. */
  pause(): void {
    if (this.running && this.pid !== undefined) process.kill(this.pid, 'SIGSTOP');
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    if (this.running && this.pid !== undefined) process.kill(this.pid, 'SIGCONT');
  }

  /** SIGKILL by pid (a paused server dies too); waits for the exit. */
  async kill(): Promise<void> {
    if (!this.running || this.pid === undefined) return this.#exited;
    process.kill(this.pid, 'SIGKILL');
    await this.#exited;
  }

  /** Alias of {@link kill}: tests end every server they started. */
  stop(): Promise<void> {
    return this.kill();
  }
}
