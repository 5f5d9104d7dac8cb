/**
 * The chaos fault injector: runs N watcher processes (harness/watcher-node.ts) on one host on a
 * private endpoint, attacks them with random faults at random times drawn from a seeded PRNG,
 * and records a {@link History} for the pure checker (chaos/checker.ts). It judges nothing.
 *
 * Faults: SIGKILL of the primary or of a random node; SIGSTOP of the primary or of a random node,
 * then SIGCONT (or, sometimes, SIGKILL) after a pause that is sometimes longer than
 * `heartbeatTimeout`; a blocked event loop; graceful shutdown; stepDown; setEnabled toggles;
 * restarts of dead nodes (keeping N alive-ish), each with a fresh random priority.
 *
 * Bounded: at most `maxFaults` faults within `durationMs`; every wait has a timeout; only the
 * pids it spawned are signalled; everything it spawned is SIGKILLed at the end (and the children
 * exit on their own if this process dies, through the IPC channel). Replay: the same seed gives
 * the same sequence of draws; what each draw hits still depends on the processes' timing.
 *
 * @module
 */
import { Cluster, freePort, tempWorkdir, uniqueIpc, wallNow, type WatcherProcess } from '../harness/cluster.js';
import type { NodeConfig } from '../harness/watcher-node.js';
import type { ExitRecord, Fault, History, ProcessRecord } from './history.js';
import { createPrng, type Prng } from './prng.js';

/** The kinds of action the injector draws from. */
export type ChaosAction =
  | 'killPrimary'
  | 'killRandom'
  | 'stopPrimary'
  | 'stopRandom'
  | 'blockPrimary'
  | 'blockRandom'
  | 'shutdownPrimary'
  | 'shutdownRandom'
  | 'stepDown'
  | 'toggleEnabled'
  | 'restart';

export const DEFAULT_WEIGHTS: Readonly<Record<ChaosAction, number>> = Object.freeze({
  killPrimary: 4,
  killRandom: 1.5,
  stopPrimary: 2.5,
  stopRandom: 1.2,
  blockPrimary: 0.8,
  blockRandom: 0.5,
  shutdownPrimary: 3,
  shutdownRandom: 0.6,
  stepDown: 1,
  toggleEnabled: 1.5,
  // Per missing node.
  restart: 2.5,
});

export interface ChaosOptions {
  readonly seed: number;
  /** How long faults are injected, ms. */
  readonly durationMs: number;
  /** Watcher processes kept alive-ish. At least 5. */
  readonly nodes: number;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  /** tcp 127.0.0.1 free port, a Linux abstract ipc socket, or drawn from the seed. */
  readonly transport: 'tcp' | 'ipc' | 'random';
  /** Random priorities (lower is preferred) for every node. */
  readonly priorities: boolean;
  /** Pause between faults, ms; now and then a burst ignores it (0..30 ms). */
  readonly minGapMs: number;
  readonly maxGapMs: number;
  readonly burstChance: number;
  readonly maxFaults: number;
  /** Quiet time at the end (no faults) before observation ends, ms. */
  readonly settleMs: number;
  /** Longest wait for the initial nodes to be ready, ms. */
  readonly readyTimeoutMs: number;
  /** A graceful shutdown that has not ended after this is finished with SIGKILL (and flagged), ms. */
  readonly shutdownTimeoutMs: number;
  readonly weights: Readonly<Record<ChaosAction, number>>;
  /** Progress lines. */
  readonly log: (line: string) => void;
  /** Stops the injection early (the run still settles, records and tears down). */
  readonly signal?: AbortSignal;
}

export const DEFAULT_CHAOS_OPTIONS: Omit<ChaosOptions, 'seed'> = Object.freeze({
  durationMs: 30_000,
  nodes: 5,
  heartbeatInterval: 50,
  heartbeatTimeout: 400,
  transport: 'random',
  priorities: true,
  minGapMs: 50,
  maxGapMs: 900,
  burstChance: 0.12,
  maxFaults: 100_000,
  settleMs: 1500,
  readyTimeoutMs: 60_000,
  shutdownTimeoutMs: 8000,
  weights: DEFAULT_WEIGHTS,
  log: () => {},
});

export interface ChaosRun {
  readonly history: History;
  readonly seed: number;
  readonly endpoint: string;
  readonly options: Omit<ChaosOptions, 'log' | 'signal'>;
}

interface Member {
  readonly key: string;
  readonly instanceId: string;
  readonly proc: WatcherProcess;
  readonly spawnedAt: number;
  readonly priority: number | undefined;
  exit: ExitRecord | undefined;
  /** SIGKILL sent (its exit may not have been observed yet). */
  doomed: boolean;
  stopped: boolean;
  disabled: boolean;
  leaving: boolean;
  /** Until when its event loop is (at least) blocked, wall ms. */
  blockedUntil: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Runs one chaos experiment and returns its history. Always tears down what it started. */
export async function runChaos(input: Partial<ChaosOptions> & { seed: number }): Promise<ChaosRun> {
  const o: ChaosOptions = { ...DEFAULT_CHAOS_OPTIONS, ...input };
  if (o.nodes < 5) throw new RangeError(`nodes must be at least 5, received ${o.nodes}`);
  const rng = createPrng(o.seed);
  const transport = o.transport === 'random' ? (rng.chance(0.5) ? 'tcp' : 'ipc') : o.transport;
  const endpoint = transport === 'tcp' ? `tcp://127.0.0.1:${await freePort()}` : uniqueIpc(`fw-chaos-${o.seed}`);
  const workdir = tempWorkdir('fw-chaos-');
  const cluster = new Cluster();
  const injector = new Injector(o, rng, endpoint, workdir.path, cluster);
  try {
    const history = await injector.run();
    return { history, seed: o.seed, endpoint, options: stripFns(o) };
  } finally {
    await injector.teardown();
    workdir.cleanup();
  }
}

function stripFns(o: ChaosOptions): Omit<ChaosOptions, 'log' | 'signal'> {
  const { log: _log, signal: _signal, ...rest } = o;
  return rest;
}

class Injector {
  readonly #o: ChaosOptions;
  readonly #rng: Prng;
  readonly #endpoint: string;
  readonly #workdir: string;
  readonly #cluster: Cluster;
  readonly #members: Member[] = [];
  /** instanceId -> its incarnations so far. */
  readonly #incarnations = new Map<string, number>();
  readonly #faults: Fault[] = [];
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** Pending ends of pauses and disabled periods, run early at the end of the injection. */
  readonly #pendingEnds = new Map<Member, () => void>();
  readonly #pendingEnables = new Map<Member, () => void>();
  readonly #stalls: Array<{ at: number; ms: number }> = [];
  #probe: ReturnType<typeof setInterval> | undefined;
  #tornDown = false;

  constructor(o: ChaosOptions, rng: Prng, endpoint: string, workdir: string, cluster: Cluster) {
    this.#o = o;
    this.#rng = rng;
    this.#endpoint = endpoint;
    this.#workdir = workdir;
    this.#cluster = cluster;
  }

  async run(): Promise<History> {
    const o = this.#o;
    o.log(`chaos: seed ${o.seed}, ${o.nodes} nodes on ${this.#endpoint}, ${Math.round(o.durationMs / 1000)} s of faults`);
    for (let i = 0; i < o.nodes; i++) this.#spawn(`n${i}`);
    await this.#initialSettle();
    this.#startStallProbe();
    const startedAt = wallNow();
    const stopAt = startedAt + o.durationMs;
    o.log('chaos: cluster ready, injecting');

    let faults = 0;
    let lastReport = startedAt;
    while (faults < o.maxFaults && !o.signal?.aborted) {
      const gap = this.#rng.chance(o.burstChance) ? this.#rng.between(0, 30) : this.#rng.between(o.minGapMs, o.maxGapMs);
      if (wallNow() + gap >= stopAt) break;
      await sleep(gap);
      if (o.signal?.aborted) break;
      // A draw that does not apply now (no spare node, too many paused...) is redrawn a few times.
      for (let draw = 0; draw < 4; draw++) {
        if (this.#act()) {
          faults++;
          break;
        }
      }
      if (wallNow() - lastReport > 10_000) {
        lastReport = wallNow();
        o.log(`chaos: ${Math.round((lastReport - startedAt) / 1000)} s, ${this.#faults.length} faults, ${this.#alive().length} alive`);
      }
    }

    // The end: resume every stopped node, re-enable every disabled one, let the cluster settle.
    for (const end of [...this.#pendingEnds.values()]) end();
    for (const enable of [...this.#pendingEnables.values()]) enable();
    const settleUntil = wallNow() + o.settleMs;
    await this.#waitUntil(() => this.#primary() !== undefined && this.#members.every((m) => !m.leaving || m.exit !== undefined), o.settleMs + o.shutdownTimeoutMs);
    await sleep(settleUntil - wallNow());
    const endedAt = wallNow();
    this.#stopStallProbe();
    o.log(`chaos: observation ended after ${Math.round((endedAt - startedAt) / 1000)} s, ${this.#faults.length} faults`);

    await this.#killAll(true);
    return {
      seed: o.seed,
      startedAt,
      endedAt,
      heartbeatInterval: o.heartbeatInterval,
      heartbeatTimeout: o.heartbeatTimeout,
      processes: this.#members.map((m) => this.#record(m)),
      faults: [...this.#faults],
      injectorStalls: [...this.#stalls],
    };
  }

  /** Kills whatever is left (idempotent). */
  async teardown(): Promise<void> {
    if (this.#tornDown) return;
    this.#tornDown = true;
    this.#stopStallProbe();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await this.#killAll(true);
    await this.#cluster.stopAll();
  }

  /** Notes when this process's own event loop wakes late: a gauge of the machine's load. */
  #startStallProbe(): void {
    const period = 10;
    let expected = wallNow() + period;
    this.#probe = setInterval(() => {
      const now = wallNow();
      const late = now - expected;
      if (late > 25 && this.#stalls.length < 100_000) this.#stalls.push({ at: now, ms: late });
      expected = now + period;
    }, period);
  }

  #stopStallProbe(): void {
    if (this.#probe !== undefined) clearInterval(this.#probe);
    this.#probe = undefined;
  }

  // --- nodes ----------------------------------------------------------------------------------

  #spawn(instanceId: string): Member {
    const n = (this.#incarnations.get(instanceId) ?? 0) + 1;
    this.#incarnations.set(instanceId, n);
    const priority = this.#o.priorities ? this.#rng.int(0, 9) : undefined;
    const config: NodeConfig = {
      endpoint: this.#endpoint,
      instanceId,
      workdir: this.#workdir,
      role: 'auto',
      heartbeatInterval: this.#o.heartbeatInterval,
      heartbeatTimeout: this.#o.heartbeatTimeout,
      enabled: true,
      ...(priority !== undefined ? { priority } : {}),
    };
    const spawnedAt = wallNow();
    const proc = this.#cluster.spawn(config);
    const member: Member = {
      key: `${instanceId}#${n}`,
      instanceId,
      proc,
      spawnedAt,
      priority,
      exit: undefined,
      doomed: false,
      stopped: false,
      disabled: false,
      leaving: false,
      blockedUntil: 0,
    };
    void proc.exited.then(({ code, signal }) => {
      member.exit = { code, signal, observedAt: wallNow() };
      this.#pendingEnds.delete(member);
      this.#pendingEnables.delete(member);
    });
    this.#members.push(member);
    return member;
  }

  #record(m: Member): ProcessRecord {
    return {
      key: m.key,
      instanceId: m.instanceId,
      pid: m.proc.pid,
      spawnedAt: m.spawnedAt,
      enabled: true,
      ...(m.priority !== undefined ? { priority: m.priority } : {}),
      events: [...m.proc.events],
      ...(m.exit !== undefined ? { exit: m.exit } : {}),
      stderrTail: m.proc.stderr.slice(-4000),
    };
  }

  async #initialSettle(): Promise<void> {
    const o = this.#o;
    const ok = await this.#waitUntil(() => this.#members.every((m) => this.#isReady(m)) && this.#primary() !== undefined, o.readyTimeoutMs);
    const primary = this.#primary();
    if (!ok || primary === undefined) {
      const states = this.#members.map((m) => `${m.key}: ${m.proc.events.map((e) => e.type).join(',')} ${m.proc.stderr.slice(-300)}`);
      throw new Error(`chaos: the initial cluster did not come up within ${o.readyTimeoutMs} ms\n${states.join('\n')}`);
    }
    // Every secondary follows the primary before the first fault.
    await this.#waitUntil(
      () => this.#members.every((m) => m === primary || m.proc.events.some((e) => e.type === 'primaryChanged' && e.instanceId === primary.instanceId)),
      10_000,
    );
  }

  /** Not SIGKILLed, not exited: what faults may target. */
  #alive(): Member[] {
    return this.#members.filter((m) => m.exit === undefined && !m.doomed && m.proc.alive);
  }

  /** Whether a command can reach it. */
  #reachable(m: Member): boolean {
    return m.exit === undefined && !m.doomed && m.proc.child.connected;
  }

  #isReady(m: Member): boolean {
    return m.proc.events.some((e) => e.type === 'ready');
  }

  /** Alive, ready, not stopped, not blocked, not leaving. */
  #running(): Member[] {
    const now = wallNow();
    return this.#alive().filter((m) => this.#isReady(m) && !m.stopped && !m.leaving && m.blockedUntil < now);
  }

  /** The alive node whose latest reported role change is to primary (the injector's best view). */
  #primary(): Member | undefined {
    return this.#alive().find((m) => {
      for (let i = m.proc.events.length - 1; i >= 0; i--) {
        const e = m.proc.events[i]!;
        if (e.type === 'roleChanged') return e.to === 'primary';
      }
      return false;
    });
  }

  async #waitUntil(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
    const until = wallNow() + timeoutMs;
    for (let i = 0; i < 100_000 && wallNow() < until; i++) {
      if (predicate()) return true;
      await sleep(20);
    }
    return predicate();
  }

  #later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#tornDown) fn();
    }, ms);
    this.#timers.add(timer);
  }

  // --- faults ---------------------------------------------------------------------------------

  #note(kind: Fault['kind'], m: Member, at: number, extra: Partial<Fault> = {}): void {
    const fault: Fault = { kind, target: m.key, at, doneAt: wallNow(), ...extra };
    this.#faults.push(fault);
    this.#o.log(`  +${kind}${fault.value !== undefined ? `(${fault.value})` : ''}${fault.ms !== undefined ? `(${Math.round(fault.ms)} ms)` : ''} ${m.key}${fault.note ? ` [${fault.note}]` : ''}`);
  }

  /** Sends a signal to one of our children; records it. False if it was already gone. */
  #signal(m: Member, signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT', extra: Partial<Fault> = {}): boolean {
    if (m.exit !== undefined || m.doomed || !m.proc.alive) return false;
    const kind = signal === 'SIGKILL' ? 'kill' : signal === 'SIGSTOP' ? 'stop' : 'cont';
    const at = wallNow();
    try {
      m.proc.kill(signal);
    } catch {
      return false; // exited between the check and the signal; its exit record says how
    }
    this.#note(kind, m, at, extra);
    if (signal === 'SIGKILL') {
      m.doomed = true;
      m.stopped = false;
      this.#pendingEnds.delete(m);
      this.#pendingEnables.delete(m);
    }
    return true;
  }

  /** Draws and applies one action; false if nothing was applicable. */
  #act(): boolean {
    const o = this.#o;
    const rng = this.#rng;
    const missing = o.nodes - this.#alive().filter((m) => !m.leaving).length;
    const weights = { ...o.weights, restart: missing > 0 ? o.weights.restart * missing : 0 };
    const action = rng.weighted(weights);
    const primary = this.#primary();
    const running = this.#running().filter((m) => this.#reachable(m));
    const paused = this.#alive().filter((m) => m.stopped || m.blockedUntil >= wallNow()).length;
    // Keep at least two other running, enabled nodes able to take over.
    const spare = (target: Member): boolean => running.filter((m) => m !== target && !m.disabled).length >= 2;
    const randomTarget = (): Member | undefined => rng.pick(running.filter((m) => spare(m)));
    // A restarted process boots node + tsx + esbuild: about a second of both cores. That burst is
    // not the watcher's doing, so the primary is not attacked (and no second node restarted)
    // while one boots.
    const booting = this.#alive().some((m) => !this.#isReady(m));
    const primaryTarget = (): Member | undefined =>
      !booting && primary !== undefined && running.includes(primary) && spare(primary) ? primary : undefined;

    switch (action) {
      case 'killPrimary':
      case 'killRandom': {
        const target = action === 'killPrimary' ? primaryTarget() : rng.pick(this.#alive().filter((m) => m.stopped || spare(m)));
        return target !== undefined && this.#signal(target, 'SIGKILL', { note: action === 'killPrimary' ? 'primary' : 'random' });
      }
      case 'stopPrimary':
      case 'stopRandom': {
        if (paused >= 2) return false;
        const target = action === 'stopPrimary' ? primaryTarget() : randomTarget();
        if (target === undefined) return false;
        const long = rng.chance(0.5);
        const pause = long ? rng.between(1.2, 3) * o.heartbeatTimeout : rng.between(30, 0.8 * o.heartbeatTimeout);
        const thenKill = rng.chance(0.25);
        if (!this.#signal(target, 'SIGSTOP', { note: `${action === 'stopPrimary' ? 'primary' : 'random'}, ${Math.round(pause)} ms` })) return false;
        target.stopped = true;
        const end = (kill: boolean): void => {
          this.#pendingEnds.delete(target);
          if (!target.stopped || target.doomed) return;
          target.stopped = false;
          this.#signal(target, kill ? 'SIGKILL' : 'SIGCONT', { note: kill ? 'while stopped' : undefined });
        };
        this.#pendingEnds.set(target, () => end(false));
        this.#later(pause, () => end(thenKill));
        return true;
      }
      case 'blockPrimary':
      case 'blockRandom': {
        if (paused >= 2) return false;
        const target = action === 'blockPrimary' ? primaryTarget() : randomTarget();
        if (target === undefined) return false;
        const ms = rng.chance(0.5) ? rng.between(1.2, 2) * o.heartbeatTimeout : rng.between(20, 0.8 * o.heartbeatTimeout);
        const at = wallNow();
        target.proc.send({ cmd: 'block', ms });
        target.blockedUntil = at + ms + 100;
        this.#note('block', target, at, { ms, note: action === 'blockPrimary' ? 'primary' : 'random' });
        return true;
      }
      case 'shutdownPrimary':
      case 'shutdownRandom': {
        const target = action === 'shutdownPrimary' ? primaryTarget() : randomTarget();
        if (target === undefined) return false;
        const at = wallNow();
        target.proc.send({ cmd: 'shutdown' });
        target.leaving = true;
        this.#note('shutdown', target, at, { note: action === 'shutdownPrimary' ? 'primary' : 'random' });
        this.#later(o.shutdownTimeoutMs, () => {
          if (target.exit === undefined) this.#signal(target, 'SIGKILL', { note: 'shutdown-timeout' });
        });
        return true;
      }
      case 'stepDown': {
        const target = primaryTarget();
        if (target === undefined) return false;
        const at = wallNow();
        target.proc.send({ cmd: 'stepDown' });
        this.#note('stepDown', target, at, { note: 'primary' });
        return true;
      }
      case 'toggleEnabled': {
        const target = rng.pick(running);
        if (target === undefined) return false;
        if (target.disabled) {
          const enable = this.#pendingEnables.get(target);
          enable?.();
          return enable !== undefined;
        }
        const disabled = this.#alive().filter((m) => m.disabled).length;
        if (disabled >= Math.floor((o.nodes - 1) / 2) || !spare(target)) return false;
        const at = wallNow();
        target.proc.send({ cmd: 'setEnabled', value: false });
        target.disabled = true;
        this.#note('setEnabled', target, at, { value: false });
        const enable = (): void => {
          this.#pendingEnables.delete(target);
          if (!target.disabled || !this.#reachable(target)) return;
          const t = wallNow();
          target.proc.send({ cmd: 'setEnabled', value: true });
          target.disabled = false;
          this.#note('setEnabled', target, t, { value: true });
        };
        this.#pendingEnables.set(target, enable);
        this.#later(rng.between(200, 3000), enable);
        return true;
      }
      case 'restart': {
        if (booting) return false;
        // Only once every earlier incarnation has exited: never two processes with one id.
        const live = new Set(this.#members.filter((m) => m.exit === undefined).map((m) => m.instanceId));
        const dead = [...this.#incarnations.keys()].filter((id) => !live.has(id));
        const id = rng.pick(dead);
        if (id === undefined) return false;
        const at = wallNow();
        const m = this.#spawn(id);
        this.#note('restart', m, at);
        return true;
      }
      default:
        return false;
    }
  }

  async #killAll(final: boolean): Promise<void> {
    for (const m of this.#alive()) this.#signal(m, 'SIGKILL', final ? { final: true } : {});
    await Promise.race([Promise.all(this.#members.map((m) => m.proc.exited)), sleep(10_000)]);
    // Let the exit handlers above record their observation time.
    await sleep(0);
  }
}
