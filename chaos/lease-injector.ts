/**
 * The chaos fault injector for the lease backends (etcd, PostgreSQL, Redis): runs N election
 * node processes (harness/lease-node.ts; harness/redis-node.ts for Redis) against a private
 * server on a free loopback port, attacks the nodes and the server with seeded random faults, and
 * records a {@link History} for the pure checker (chaos/checker.ts, in lease mode). It judges
 * nothing.
 *
 * Node faults: SIGKILL of the primary or of a random node; SIGSTOP of the primary or a random
 * node, then SIGCONT (or SIGKILL) after a pause drawn up to past the lease; graceful shutdown of
 * the primary; stepDown; setEnabled(false) for a while (not Redis: its node harness has no such
 * command); restarts of dead nodes. Server faults: a pause (SIGSTOP of every server process, then
 * SIGCONT) and a restart (etcd: SIGKILL and start again on the same data; PostgreSQL: fast
 * shutdown and start again; not Redis, whose lease keys, epoch included, live in memory only: a
 * restart resets the epoch, a documented limit of that backend).
 *
 * Bounded: at most `maxFaults` faults within `durationMs`; every wait has a timeout; at least two
 * other running nodes are kept whenever one is taken away, at most one node is paused at once;
 * only pids it spawned are signalled; everything is SIGKILLed at the end (and the children exit
 * on their own if this process dies, through the IPC channel).
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { wallNow } from '../harness/cluster.js';
import { startEtcd, type EtcdCluster } from '../harness/etcd-server.js';
import type { LeaseNodeConfig } from '../harness/lease-node.js';
import { PostgresServer } from '../harness/postgres-server.js';
import { RedisNodeProcess, uniqueProject, type RedisNodeEvent } from '../harness/redis-cluster.js';
import { RedisServer } from '../harness/redis-server.js';
import type { CheckOptions } from './checker.js';
import type { ExitRecord, Fault, History, HistoryEvent, ProcessRecord } from './history.js';
import { createPrng, type Prng } from './prng.js';

const LEASE_NODE = fileURLToPath(new URL('../harness/lease-node.ts', import.meta.url));

export type LeaseBackend = 'etcd' | 'postgres' | 'redis';

/** Each backend's timings, and the checker's bounds that follow from them. */
export interface LeaseProfile {
  /** The election options given to every node. */
  readonly options: Readonly<Record<string, number>>;
  /** What the history calls heartbeatInterval/heartbeatTimeout (keepalive or confirm / lease). */
  readonly interval: number;
  readonly lease: number;
  /** Longest SIGSTOP of a node, ms (past the lease, so that stopped primaries get replaced). */
  readonly maxPauseMs: number;
  readonly bounds: CheckOptions;
  readonly serverRestart: boolean;
  /**
   * Whether server faults are injected unless `serverFaults` says otherwise. On everywhere
   * (Redis: pauses only, see `serverRestart`) since the split brain that Redis pauses found is
   * fixed (chaos/README.md).
   */
  readonly serverFaultsByDefault: boolean;
  readonly setEnabled: boolean;
}

// On a loaded 2-core machine a process can wait ~300 ms for a CPU: the bounds leave room for
// that on top of each backend's own takeover path.
export const LEASE_PROFILES: Readonly<Record<LeaseBackend, LeaseProfile>> = {
  etcd: {
    options: { leaseTTL: 2000, keepAliveInterval: 300, maxDrift: 1000 },
    interval: 300,
    lease: 2000,
    maxPauseMs: 3500,
    // A crash: the lease runs out (TTL, etcd checks expiry every 500 ms) and the watch fires.
    bounds: { crashBound: 2000 + 500 + 300 + 700, shutdownBound: 600, tolerance: 1, wakeBound: 1000 },
    serverRestart: true,
    serverFaultsByDefault: true,
    setEnabled: true,
  },
  postgres: {
    options: {},
    interval: 500,
    lease: 3000,
    maxPauseMs: 4500,
    // A crash closes the connection and the server releases the lock at once.
    bounds: { crashBound: 600, shutdownBound: 600, tolerance: 1, wakeBound: 1000 },
    serverRestart: true,
    serverFaultsByDefault: true,
    setEnabled: true,
  },
  redis: {
    options: { leaseTTL: 1000, maxDrift: 500, tickInterval: 100 },
    interval: 100,
    lease: 1000,
    maxPauseMs: 2000,
    bounds: { crashBound: 1000 + 120 + 600, shutdownBound: 600, tolerance: 1, wakeBound: 1000 },
    serverRestart: false,
    serverFaultsByDefault: true,
    setEnabled: false,
  },
};

export interface LeaseChaosOptions {
  readonly backend: LeaseBackend;
  readonly seed: number;
  /** How long faults are injected, ms. */
  readonly durationMs: number;
  /** Node processes kept alive-ish; at least 4. @default 4 */
  readonly nodes?: number;
  /** Also pause and restart the server. @default the profile's `serverFaultsByDefault` */
  readonly serverFaults?: boolean;
  readonly maxFaults?: number;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface LeaseChaosRun {
  readonly history: History;
  readonly server: string;
  readonly profile: LeaseProfile;
}

interface Member {
  readonly key: string;
  readonly instanceId: string;
  readonly proc: RedisNodeProcess;
  readonly spawnedAt: number;
  readonly enabled: boolean;
  exit: ExitRecord | undefined;
  doomed: boolean;
  stopped: boolean;
  disabled: boolean;
  leaving: boolean;
}

interface Server {
  readonly url: string;
  pause(): void;
  resume(): void;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

async function startServer(backend: LeaseBackend): Promise<Server> {
  if (backend === 'etcd') {
    const etcd: EtcdCluster = await startEtcd(1);
    return {
      url: etcd.hosts.join(','),
      pause: () => etcd.signal(0, 'SIGSTOP'),
      resume: () => etcd.signal(0, 'SIGCONT'),
      restart: async () => {
        await etcd.kill(0);
        await etcd.restart(0);
      },
      stop: () => etcd.stop(),
    };
  }
  if (backend === 'postgres') {
    const pg = await PostgresServer.start();
    return {
      url: pg.url,
      pause: () => pg.signalAll('SIGSTOP'),
      resume: () => pg.signalAll('SIGCONT'),
      restart: async () => {
        await pg.stop();
        await pg.restart();
      },
      stop: () => pg.destroy(),
    };
  }
  const redis = await RedisServer.start();
  return {
    url: redis.url,
    pause: () => redis.pause(),
    resume: () => redis.resume(),
    restart: () => Promise.reject(new Error('no restart of the Redis server: its epoch lives in memory only')),
    stop: () => redis.kill(),
  };
}

/** Runs one chaos experiment against one lease backend. Always tears down what it started. */
export async function runLeaseChaos(input: LeaseChaosOptions): Promise<LeaseChaosRun> {
  const nodes = input.nodes ?? 4;
  if (nodes < 4) throw new RangeError(`nodes must be at least 4, received ${nodes}`);
  const profile = LEASE_PROFILES[input.backend];
  const server = await startServer(input.backend);
  const injector = new LeaseInjector(input, nodes, profile, server, createPrng(input.seed));
  try {
    return { history: await injector.run(), server: `${input.backend} ${server.url}`, profile };
  } finally {
    await injector.teardown();
    server.resume();
    await server.stop();
  }
}

class LeaseInjector {
  readonly #o: LeaseChaosOptions;
  readonly #nodes: number;
  readonly #p: LeaseProfile;
  readonly #server: Server;
  readonly #rng: Prng;
  readonly #project: string;
  readonly #members: Member[] = [];
  readonly #incarnations = new Map<string, number>();
  readonly #faults: Fault[] = [];
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** Ends of pauses and disabled periods still pending, run early at the end of the injection. */
  readonly #pending = new Map<string, () => void>();
  readonly #leaving: Promise<void>[] = [];
  /** The node booting now: one at a time, and the primary is not attacked meanwhile. */
  #booting: Promise<void> | undefined;
  #log: (line: string) => void;

  constructor(o: LeaseChaosOptions, nodes: number, p: LeaseProfile, server: Server, rng: Prng) {
    this.#o = o;
    this.#nodes = nodes;
    this.#p = p;
    this.#server = server;
    this.#rng = rng;
    this.#project = uniqueProject(`chaos-${o.backend}`).replace(/[^A-Za-z0-9_.-]/g, '_');
    this.#log = o.log ?? (() => {});
  }

  async run(): Promise<History> {
    const o = this.#o;
    this.#log(`lease chaos: ${o.backend}, seed ${o.seed}, ${this.#nodes} nodes, ${Math.round(o.durationMs / 1000)} s of faults`);
    const booted = wallNow();
    const first = Array.from({ length: this.#nodes }, (_, i) => this.#spawn(`n${i}`));
    await Promise.all(first.map((m) => m.proc.waitFor((e) => e.type === 'ready', 60_000, 'ready')));
    await this.#waitPrimary(20_000);
    const startedAt = wallNow();
    this.#log(`lease chaos: ${this.#nodes} nodes ready in ${Math.round(startedAt - booted)} ms; injecting`);
    const stopAt = startedAt + o.durationMs;
    const maxFaults = o.maxFaults ?? 10_000;
    let faults = 0;
    while (faults < maxFaults && !o.signal?.aborted) {
      const gap = this.#rng.between(150, 900);
      if (wallNow() + gap >= stopAt) break;
      await sleep(gap);
      for (let draw = 0; draw < 4; draw++) {
        if (await this.#act()) {
          faults++;
          break;
        }
      }
    }
    // End every pause and disabled period, then let the cluster settle before observing ends.
    for (const end of [...this.#pending.values()]) end();
    this.#pending.clear();
    await Promise.all(this.#leaving);
    await this.#booting;
    const settleFrom = wallNow();
    await this.#waitPrimary(this.#p.bounds.crashBound + 5000).catch(() => undefined);
    // A primary continued just now has wakeBound to report its step-down: observe past that.
    await sleep((this.#p.bounds.wakeBound ?? 0) + 500);
    const endedAt = wallNow();
    this.#log(`lease chaos: ${faults} faults injected; settled in ${Math.round(endedAt - settleFrom)} ms`);
    return this.#history(startedAt, endedAt);
  }

  /** SIGKILLs every node still alive (recorded as final faults) and waits for the exits. */
  async teardown(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const m of this.#members) {
      if (m.exit !== undefined || m.doomed) continue;
      this.#kill(m, 'teardown', true);
    }
    await Promise.all(this.#members.map((m) => Promise.race([m.proc.exited, sleep(10_000)])));
  }

  #spawn(instanceId: string): Member {
    const n = (this.#incarnations.get(instanceId) ?? 0) + 1;
    this.#incarnations.set(instanceId, n);
    const base = { project: this.#project, nodeId: instanceId, redisUrl: this.#server.url };
    const backend = this.#o.backend;
    let proc: RedisNodeProcess;
    if (backend === 'redis') proc = new RedisNodeProcess({ ...base, ...this.#p.options });
    else {
      const config: LeaseNodeConfig = { ...base, backend, options: this.#p.options };
      proc = new RedisNodeProcess(config, {}, LEASE_NODE);
    }
    const m: Member = { key: `${instanceId}#${n}`, instanceId, proc, spawnedAt: wallNow(), enabled: true, exit: undefined, doomed: false, stopped: false, disabled: false, leaving: false };
    void proc.exited.then(({ code, signal }) => {
      m.exit = { code, signal, observedAt: wallNow() };
    });
    this.#members.push(m);
    return m;
  }

  #alive(): Member[] {
    return this.#members.filter((m) => m.exit === undefined && !m.doomed && !m.leaving);
  }

  /** Ready, running (not stopped), enabled, and not the given one. */
  #spares(except: Member): Member[] {
    return this.#alive().filter((m) => m !== except && !m.stopped && !m.disabled && m.proc.events.some((e) => e.type === 'ready'));
  }

  #primary(): Member | undefined {
    return this.#alive().find((m) => !m.stopped && m.proc.role === 'primary');
  }

  async #waitPrimary(timeout: number): Promise<void> {
    const deadline = wallNow() + timeout;
    for (let i = 0; i < 10_000 && wallNow() < deadline; i++) {
      if (this.#primary() !== undefined) return;
      await sleep(20);
    }
    throw new Error(`no primary within ${timeout} ms`);
  }

  #record(kind: Fault['kind'], target: string, act: () => void, extra: Partial<Fault> = {}): void {
    const at = wallNow();
    act();
    this.#faults.push({ kind, target, at, doneAt: wallNow(), ...extra });
  }

  #kill(m: Member, note: string, final = false): void {
    m.doomed = true;
    this.#record('kill', m.key, () => m.proc.kill('SIGKILL'), { note, ...(final ? { final } : {}) });
  }

  #later(ms: number, key: string, fn: () => void): void {
    const run = (): void => {
      clearTimeout(timer);
      this.#timers.delete(timer);
      this.#pending.delete(key);
      fn();
    };
    const timer = setTimeout(run, ms);
    this.#timers.add(timer);
    this.#pending.set(key, run);
  }

  /** One fault drawn at random; false when the draw does not apply now. */
  async #act(): Promise<boolean> {
    const p = this.#p;
    const serverFaults = this.#o.serverFaults ?? p.serverFaultsByDefault;
    const weights: Array<[string, number]> = [
      ['killPrimary', 4],
      ['killRandom', 1],
      ['stopPrimary', 2.5],
      ['stopRandom', 1],
      ['shutdownPrimary', 3],
      ['stepDown', 1.5],
      ['toggleEnabled', p.setEnabled ? 1 : 0],
      ['restart', 3 * (this.#nodes - this.#alive().length)],
      ['serverPause', serverFaults ? 0.7 : 0],
      ['serverRestart', serverFaults && p.serverRestart ? 0.4 : 0],
    ];
    let x = this.#rng.next() * weights.reduce((a, [, w]) => a + w, 0);
    const action = (weights.find(([, w]) => (x -= w) < 0) ?? weights[0]!)[0];
    // A boot is about a second of both cores (node + tsx): that burst is the harness's, not the
    // election's latency, so the primary is not attacked while a node boots.
    const primary = this.#booting === undefined ? this.#primary() : undefined;
    const anyNode = (): Member | undefined => {
      const alive = this.#alive();
      return alive[this.#rng.int(0, alive.length - 1)];
    };
    const paused = this.#members.some((m) => m.stopped && m.exit === undefined && !m.doomed);
    switch (action) {
      case 'killPrimary':
      case 'killRandom': {
        const m = action === 'killPrimary' ? primary : anyNode();
        if (m === undefined || this.#spares(m).length < 2) return false;
        this.#pending.delete(`cont:${m.key}`);
        this.#kill(m, action === 'killPrimary' ? 'primary' : 'random');
        return true;
      }
      case 'stopPrimary':
      case 'stopRandom': {
        const m = action === 'stopPrimary' ? primary : anyNode();
        if (m === undefined || paused || m.stopped || this.#spares(m).length < 2) return false;
        m.stopped = true;
        this.#record('stop', m.key, () => m.proc.kill('SIGSTOP'), { note: action === 'stopPrimary' ? 'primary' : 'random' });
        const killInstead = this.#rng.chance(0.2);
        this.#later(this.#rng.between(100, p.maxPauseMs), `cont:${m.key}`, () => {
          if (m.exit !== undefined || m.doomed) return;
          if (killInstead) this.#kill(m, 'while-stopped');
          else this.#record('cont', m.key, () => m.proc.kill('SIGCONT'));
          m.stopped = false;
        });
        return true;
      }
      case 'shutdownPrimary': {
        const m = primary;
        if (m === undefined || this.#spares(m).length < 2) return false;
        m.leaving = true;
        this.#record('shutdown', m.key, () => m.proc.send({ cmd: 'close' }), { note: 'primary' });
        this.#leaving.push(
          Promise.race([m.proc.exited.then(() => true), sleep(8000).then(() => false)]).then((done) => {
            if (!done && m.exit === undefined) this.#kill(m, 'shutdown-timeout');
          }),
        );
        return true;
      }
      case 'stepDown': {
        const m = primary;
        if (m === undefined || this.#spares(m).length < 2) return false;
        this.#record('stepDown', m.key, () => m.proc.send({ cmd: 'stepDown' }));
        return true;
      }
      case 'toggleEnabled': {
        const m = anyNode();
        if (m === undefined || m.disabled || m.stopped || !m.proc.child.connected || this.#spares(m).length < 2) return false;
        m.disabled = true;
        this.#record('setEnabled', m.key, () => m.proc.child.send({ cmd: 'setEnabled', value: false }), { value: false });
        this.#later(this.#rng.between(300, 3000), `enable:${m.key}`, () => {
          if (m.exit !== undefined || m.doomed || !m.proc.child.connected) return;
          this.#record('setEnabled', m.key, () => m.proc.child.send({ cmd: 'setEnabled', value: true }), { value: true });
          m.disabled = false;
        });
        return true;
      }
      case 'restart':
        return this.#restartOne();
      case 'serverPause': {
        this.#record('serverStop', 'server', () => this.#server.pause());
        await sleep(this.#rng.between(200, 1500));
        this.#record('serverCont', 'server', () => this.#server.resume());
        return true;
      }
      case 'serverRestart': {
        const at = wallNow();
        await this.#server.restart();
        this.#faults.push({ kind: 'serverRestart', target: 'server', at, doneAt: wallNow() });
        return true;
      }
    }
    return false;
  }

  #restartOne(): boolean {
    if (this.#booting !== undefined || this.#alive().length >= this.#nodes) return false;
    const taken = new Set(this.#alive().map((m) => m.instanceId));
    const id = Array.from({ length: this.#nodes }, (_, i) => `n${i}`).find((n) => !taken.has(n));
    if (id === undefined) return false;
    const at = wallNow();
    const m = this.#spawn(id);
    this.#faults.push({ kind: 'restart', target: m.key, at, doneAt: wallNow() });
    // Ends at its ready, its failed start, or its death (a booting node may be killed too).
    this.#booting = Promise.race([m.proc.waitFor((e) => e.type === 'ready' || e.type === 'startFailed', 30_000, 'ready'), m.proc.exited])
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        this.#booting = undefined;
      });
    return true;
  }


  #history(startedAt: number, endedAt: number): History {
    const processes: ProcessRecord[] = this.#members.map((m) => ({
      key: m.key,
      instanceId: m.instanceId,
      pid: m.proc.pid,
      spawnedAt: m.spawnedAt,
      enabled: m.enabled,
      events: m.proc.events.flatMap(toHistoryEvents),
      ...(m.exit !== undefined && m.exit.observedAt <= endedAt ? { exit: m.exit } : {}),
      stderrTail: m.proc.stderr.slice(-2000),
    }));
    return {
      seed: this.#o.seed,
      startedAt,
      endedAt,
      heartbeatInterval: this.#p.interval,
      heartbeatTimeout: this.#p.lease,
      processes,
      faults: [...this.#faults],
    };
  }
}

/** Redis nodes report `start` from onStart: it is the `promote` the checker reads. */
function toHistoryEvents(e: RedisNodeEvent): HistoryEvent[] {
  if (e.type === 'start') return [e, { ...e, type: 'promote', epoch: e.revision, promoteAt: e.at }];
  return [e];
}
