/**
 * A chain of failovers on one endpoint, reusing processes across trials: a primary and N
 * secondaries (each its own OS process, via the harness); each trial triggers the primary's end
 * (a graceful shutdown, a SIGKILL, ...), measures until a secondary's `onPromote`, checks that the
 * others follow the winner and nobody else promoted, then spawns fresh secondaries back to N and
 * continues from the new primary. A trial that times out or leaves the chain in doubt rebuilds
 * the whole cluster on a fresh endpoint (a bounded number of times).
 *
 * Every wait is bounded; only processes this chain spawned are signalled, by pid.
 *
 * @module
 */
import { Cluster, freePort, tempWorkdir, uniqueIpc, type NodeEvent, type WatcherProcess } from '../../harness/cluster.js';
import type { NodeConfig } from '../../harness/watcher-node.js';
import { join } from 'node:path';
import { pause, raceEvent, waitEvent, waitExit } from './events.js';
import { trackCleanup, trackCluster } from './live-processes.js';

export type TransportKind = 'tcp' | 'ipc' | 'ipc-path';

/** How a row names the transport. */
export const TRANSPORT_LABEL: Readonly<Record<TransportKind, string>> = {
  tcp: 'tcp://127.0.0.1',
  ipc: 'ipc://@ (abstract)',
  'ipc-path': 'ipc:///path (file)',
};

/** Socket files made by {@link makeEndpoint} in this process. */
let endpoints = 0;

/**
 * A unique loopback endpoint: a free 127.0.0.1 port, a Linux abstract ipc name, or a socket
 * file in `dir` (a private directory: a filesystem ipc endpoint, with its path lock).
 */
export async function makeEndpoint(kind: TransportKind, dir: string): Promise<string> {
  if (kind === 'tcp') return `tcp://127.0.0.1:${await freePort()}`;
  if (kind === 'ipc') return uniqueIpc('fw-bench');
  return `ipc://${join(dir, `ep-${process.pid}-${++endpoints}.sock`)}`;
}

export interface ChainConfig {
  readonly transport: TransportKind;
  /** Secondaries kept in the pool at the start of every trial. */
  readonly secondaries: number;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  /** Prefix of the instance ids. */
  readonly idPrefix: string;
  /** Bound on a process reaching `ready` (tsx start on a loaded machine). */
  readonly readyTimeout: number;
  /** Bound on a secondary following a (new) primary, and on the other post-trial checks. */
  readonly followTimeout: number;
  /** Pause after the pool is complete again, before the next trial. */
  readonly settleMs: number;
  /** Cluster rebuilds allowed before the remaining trials are failed outright. */
  readonly maxRebuilds: number;
  /** Extra watcher options for every node (fencing, livenessProbeTimeout, ...). */
  readonly nodeOptions?: Partial<Pick<NodeConfig, 'fencing' | 'livenessProbeTimeout' | 'priority' | 'priorityStagger' | 'ballastMb'>>;
  /** Spawn at most this many secondaries at a time when filling the pool (default: all at once). */
  readonly spawnBatch?: number;
  /**
   * When the old primary's process exits after its watcher stopped: at once (default), or only
   * after a successor's onPromote (its teardown then stays out of the window a trial measures).
   */
  readonly oldExits?: 'at-once' | 'after-takeover';
}

/** Ends the primary; resolves with the instant (wall-clock ms) the measurement starts from. */
export type Trigger = (primary: WatcherProcess) => Promise<number | undefined>;

/** One trial, as the JSON records it. */
export interface ChainTrial {
  readonly trial: number;
  readonly endpoint: string;
  readonly ok: boolean;
  /** Why the trial produced no sample. */
  readonly cause: string | undefined;
  readonly oldPrimary: string;
  readonly triggerAt: number | undefined;
  readonly winner: string | undefined;
  /** True when the winner was spawned as a replacement right before this trial. */
  readonly winnerWasFresh: boolean | undefined;
  readonly promoteAt: number | undefined;
  readonly reason: string | undefined;
  readonly epoch: number | undefined;
  readonly latencyMs: number | undefined;
  readonly oldExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** onPromote calls by other secondaries in this trial (a safety violation if > 0). */
  readonly otherPromotes: number;
  /** Post-trial checks that did not hold (the sample stands; the cluster is rebuilt). */
  readonly problems: readonly string[];
  /** Binds the winner lost during this trial (endpoint still held by the old primary), from its status. */
  readonly winnerLostRaces: number | undefined;
  /** What the old primary and the winner reported, in ms after the trigger (for a breakdown). */
  readonly timeline: ReadonlyArray<{ readonly who: 'old' | 'winner'; readonly type: string; readonly ms: number }>;
}

/**
 * Why a trial produced no sample: its own cause, a promotion for another reason than
 * `expectedReason`, or more than one winner; undefined when the sample stands.
 */
export function trialFailure(t: ChainTrial, expectedReason: string): string | undefined {
  if (t.cause !== undefined) return t.cause;
  if (t.reason !== expectedReason) return `promoted with reason '${String(t.reason)}', not '${expectedReason}'`;
  if (t.otherPromotes > 0) return `${t.otherPromotes + 1} winners`;
  if (t.latencyMs === undefined) return 'no sample';
  return undefined;
}

/** Events of the old primary and the winner worth placing on a trial's timeline. */
const TIMELINE: Readonly<Record<'old' | 'winner', readonly string[]>> = {
  old: ['shutdownCalled', 'demote', 'roleChanged', 'stopped'],
  winner: ['primaryLost', 'promote', 'roleChanged'],
};

export class FailoverChain {
  readonly config: ChainConfig;
  readonly #workdir = tempWorkdir('fw-bench-');
  readonly #untrackWorkdir = trackCleanup(this.#workdir.cleanup);
  #cluster = new Cluster();
  #untrack = trackCluster(this.#cluster);
  #spawned = 0;
  #freshIds = new Set<string>();
  /** lostRaces per node as of its last status, to count the binds lost within one trial. */
  #lostRaces = new Map<string, number>();
  primary: WatcherProcess | undefined;
  pool: WatcherProcess[] = [];
  endpoint = '';
  rebuilds = 0;
  /** Why the chain gave up, once it did. */
  broken: string | undefined;

  constructor(config: ChainConfig) {
    this.config = config;
  }

  /** Starts the first cluster; resolves with a failure cause, or undefined when it is up. */
  async start(): Promise<string | undefined> {
    const cause = await this.#build();
    if (cause !== undefined) this.broken = `could not start the cluster: ${cause}`;
    return cause;
  }

  /** Runs one trial. Never throws for an outcome; a timeout is a failed trial. */
  async trial(trial: number, trigger: Trigger, timeout: number): Promise<ChainTrial> {
    const old = this.primary;
    if (this.broken !== undefined || old === undefined) {
      return this.#failed(trial, old?.id ?? '?', undefined, this.broken ?? 'no primary');
    }
    const pool = [...this.pool];
    const promoted = raceEvent(pool, (e) => e.type === 'promote', timeout);
    const triggerAt = await trigger(old);
    const hit = await promoted;
    if (triggerAt === undefined || hit === undefined) {
      const cause =
        hit === undefined
          ? `no onPromote within ${timeout} ms of the trigger`
          : 'the trigger was not acknowledged (no instant to measure from)';
      const result = this.#failed(trial, old.id, triggerAt, cause, hit?.event);
      await this.#recover(cause);
      return result;
    }

    const winner = hit.node;
    if (this.config.oldExits === 'after-takeover') old.send({ cmd: 'exit' });
    const losers = pool.filter((n) => n !== winner);
    const problems: string[] = [];
    const became = await waitEvent(winner, isPrimaryChange, this.config.followTimeout);
    if (became === undefined) problems.push(`${winner.id} called onPromote but reported no roleChanged to primary`);
    let oldExit = await waitExit(old, this.config.followTimeout);
    if (oldExit === undefined) {
      problems.push(`old primary ${old.id} did not exit within ${this.config.followTimeout} ms (killed)`);
      old.kill('SIGKILL');
      oldExit = await waitExit(old, this.config.followTimeout);
    }
    const followed = await Promise.all(
      losers.map((l) => waitEvent(l, (e) => e.type === 'primaryChanged' && e.instanceId === winner.id, this.config.followTimeout)),
    );
    losers.forEach((l, i) => {
      if (followed[i] === undefined) problems.push(`${l.id} did not follow ${winner.id} within ${this.config.followTimeout} ms`);
    });
    const otherPromotes = losers.reduce((sum, l) => sum + l.events.filter((e) => e.type === 'promote').length, 0);
    if (otherPromotes > 0) problems.push(`SAFETY: ${otherPromotes} onPromote call(s) by secondaries that lost the race`);
    const winnerLostRaces = await this.#lostRacesDelta(winner);
    for (const l of losers) await this.#lostRacesDelta(l);
    const timeline = (['old', 'winner'] as const).flatMap((who) =>
      (who === 'old' ? old : winner).events
        .filter((e) => TIMELINE[who].includes(e.type) && e.at >= triggerAt - 1)
        .map((e) => ({ who, type: e.type === 'roleChanged' ? `roleChanged:${String(e.from)}->${String(e.to)}` : e.type, ms: e.at - triggerAt })),
    );

    const record: ChainTrial = {
      trial,
      endpoint: this.endpoint,
      ok: true,
      cause: undefined,
      oldPrimary: old.id,
      triggerAt,
      winner: winner.id,
      winnerWasFresh: this.#freshIds.has(winner.id),
      promoteAt: hit.event.promoteAt as number,
      reason: hit.event.reason as string,
      epoch: hit.event.epoch as number,
      latencyMs: (hit.event.promoteAt as number) - triggerAt,
      oldExit,
      otherPromotes,
      problems,
      winnerLostRaces,
      timeline,
    };

    this.primary = winner;
    this.pool = losers;
    if (problems.length > 0) {
      await this.#recover(problems.join('; '));
      return record;
    }
    const refill = await this.#refill();
    if (refill !== undefined) await this.#recover(refill);
    else await pause(this.config.settleMs);
    return record;
  }

  /** Ends every process of the chain (SIGKILL by pid) and removes the work directory. */
  async close(): Promise<void> {
    await this.#cluster.stopAll();
    this.#untrack();
    this.#workdir.cleanup();
    this.#untrackWorkdir();
  }

  #nodeConfig(id: string, role: 'primary' | 'secondary'): NodeConfig {
    return {
      endpoint: this.endpoint,
      instanceId: id,
      workdir: this.#workdir.path,
      role,
      heartbeatInterval: this.config.heartbeatInterval,
      heartbeatTimeout: this.config.heartbeatTimeout,
      ...(this.config.oldExits === 'after-takeover' ? { exitOnStop: false } : {}),
      ...this.config.nodeOptions,
    };
  }

  #spawn(role: 'primary' | 'secondary'): WatcherProcess {
    this.#spawned++;
    // Zero-padded: ids compare as strings (the successor ranking's tie-break), so with a plain
    // counter `x-10` would rank before `x-9` and a freshly spawned secondary would win every
    // handover from the tenth on. In spawn order, the longest-running secondary is next in line.
    return this.#cluster.spawn(this.#nodeConfig(`${this.config.idPrefix}${String(this.#spawned).padStart(6, '0')}`, role));
  }

  /** A primary and the full pool on a fresh endpoint. */
  async #build(): Promise<string | undefined> {
    this.endpoint = await makeEndpoint(this.config.transport, this.#workdir.path);
    const primary = this.#spawn('primary');
    this.primary = primary;
    this.pool = [];
    const ready = await waitEvent(primary, (e) => e.type === 'ready' || e.type === 'startFailed', this.config.readyTimeout);
    if (ready?.type !== 'ready' || ready.role !== 'primary') {
      return `primary ${primary.id} not ready as primary: ${ready === undefined ? 'timeout' : JSON.stringify(ready)}`;
    }
    const cause = await this.#refill();
    this.#freshIds.clear();
    if (cause === undefined) await pause(this.config.settleMs);
    return cause;
  }

  /** Spawns secondaries until the pool is full again; they must be ready and follow the primary. */
  async #refill(): Promise<string | undefined> {
    const primary = this.primary;
    if (primary === undefined) return 'no primary';
    const missing = Math.max(0, this.config.secondaries - this.pool.length);
    const batch = Math.max(1, this.config.spawnBatch ?? missing);
    this.#freshIds = new Set();
    // Bounded: ceil(missing / batch) rounds, each waiting at most readyTimeout + followTimeout.
    for (let spawned = 0; spawned < missing; spawned += batch) {
      const fresh: WatcherProcess[] = [];
      for (let i = 0; i < Math.min(batch, missing - spawned); i++) fresh.push(this.#spawn('secondary'));
      for (const n of fresh) this.#freshIds.add(n.id);
      const outcomes = await Promise.all(
        fresh.map(async (n) => {
          const ready = await waitEvent(n, (e) => e.type === 'ready' || e.type === 'startFailed', this.config.readyTimeout);
          if (ready?.type !== 'ready') return `${n.id} not ready: ${ready === undefined ? 'timeout' : JSON.stringify(ready)}`;
          const follows = await waitEvent(
            n,
            (e) => e.type === 'primaryChanged' && e.instanceId === primary.id,
            this.config.followTimeout,
          );
          return follows === undefined ? `${n.id} did not follow ${primary.id}` : undefined;
        }),
      );
      this.pool.push(...fresh);
      const cause = outcomes.find((o) => o !== undefined);
      if (cause !== undefined) return cause;
    }
    return undefined;
  }

  /** After a failed or doubtful trial: kill everything and start over on a fresh endpoint. */
  async #recover(why: string): Promise<void> {
    await this.#cluster.stopAll();
    this.#untrack();
    this.#cluster = new Cluster();
    this.#untrack = trackCluster(this.#cluster);
    if (this.rebuilds >= this.config.maxRebuilds) {
      this.broken = `gave up after ${this.rebuilds} rebuilds; last: ${why}`;
      this.primary = undefined;
      this.pool = [];
      return;
    }
    this.rebuilds++;
    const cause = await this.#build();
    if (cause !== undefined) {
      this.broken = `rebuild failed: ${cause}`;
      await this.#cluster.stopAll();
      this.primary = undefined;
      this.pool = [];
    }
  }

  #failed(trial: number, oldPrimary: string, triggerAt: number | undefined, cause: string, event?: NodeEvent): ChainTrial {
    return {
      trial,
      endpoint: this.endpoint,
      ok: false,
      cause,
      oldPrimary,
      triggerAt,
      winner: undefined,
      winnerWasFresh: undefined,
      promoteAt: event?.promoteAt as number | undefined,
      reason: event?.reason as string | undefined,
      epoch: event?.epoch as number | undefined,
      latencyMs: undefined,
      oldExit: undefined,
      otherPromotes: 0,
      problems: [],
      winnerLostRaces: undefined,
      timeline: [],
    };
  }

  /** How many binds `node` lost since its previous status (undefined when it does not answer). */
  async #lostRacesDelta(node: WatcherProcess): Promise<number | undefined> {
    const reply = raceEvent([node], (e) => e.type === 'status', this.config.followTimeout);
    node.send({ cmd: 'status' });
    const status = (await reply)?.event.status as { lostRaces?: number } | undefined;
    if (typeof status?.lostRaces !== 'number') return undefined;
    const before = this.#lostRaces.get(node.id) ?? 0;
    this.#lostRaces.set(node.id, status.lostRaces);
    return status.lostRaces - before;
  }
}

const isPrimaryChange = (e: NodeEvent): boolean => e.type === 'roleChanged' && e.to === 'primary';

/** One note line: the median instant of each timeline event over the successful trials, in ms after the trigger. */
export function timelineNote(trials: readonly ChainTrial[]): string {
  const byKey = new Map<string, number[]>();
  for (const t of trials) {
    if (!t.ok) continue;
    for (const e of t.timeline) {
      const key = `${e.who} ${e.type}`;
      const list = byKey.get(key) ?? [];
      list.push(e.ms);
      byKey.set(key, list);
    }
  }
  const medians = [...byKey].map(([key, list]) => {
    const sorted = [...list].sort((a, b) => a - b);
    return { key, median: sorted[Math.ceil(sorted.length / 2) - 1] ?? Number.NaN };
  });
  medians.sort((a, b) => a.median - b.median);
  return `median timeline, ms after the trigger: ${medians.map((m) => `${m.key} ${m.median.toFixed(2)}`).join(' | ')}`;
}

/** One note line: how many binds the winner lost before it got the endpoint, as counts. */
export function lostRacesNote(trials: readonly ChainTrial[]): string {
  const counts = new Map<string, number>();
  for (const t of trials) {
    if (!t.ok) continue;
    const key = t.winnerLostRaces === undefined ? '?' : String(t.winnerLostRaces);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const parts = [...counts].sort(([a], [b]) => Number(a) - Number(b)).map(([k, n]) => `${k} lost: ${n} trials`);
  return `binds the winner lost before it got the endpoint: ${parts.join(', ')}`;
}
