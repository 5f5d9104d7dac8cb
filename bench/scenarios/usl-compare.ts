/**
 * usl-compare: failover-watch next to `unix-socket-leader` (npm; one host, a unix socket plus a
 * pid lock file: followers connect to the leader's socket, and when it closes they retry after
 * 50-150 ms, take the lock and listen). Both with 1 leader + 3 followers (processes), chained
 * the same way; for each, a crash (SIGKILL of the leader; from the parent's `wallNow()` before the
 * kill) and a graceful takeover (failover-watch: `shutdown()`, from the old primary's
 * `shutdownCalled.at`; unix-socket-leader: `close()`, from the old leader's `closeCalled.at`) to
 * the successor's own report (`promoteAt` / the `leader` event), all on the one host clock.
 *
 * A trial where not exactly one follower became leader is a failure. failover-watch runs on an
 * `ipc://@` abstract unix socket here, with heartbeatTimeout 5000 (so no silence can help it).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { childArgs } from '../../harness/child-runtime.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempWorkdir, wallNow } from '../../harness/cluster.js';
import type { BenchContext, LatencyRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { rounded, summarize } from '../stats.js';
import { pause, waitEvent } from '../lib/events.js';
import { FailoverChain, type Trigger } from '../lib/failover-chain.js';
import { trackChild, trackCleanup } from '../lib/live-processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const USL_CHILD = fileURLToPath(new URL('../lib/usl-node.ts', import.meta.url));

const SETTINGS = {
  followers: 3,
  /** failover-watch side. */
  heartbeatInterval: 100,
  heartbeatTimeout: 5000,
  /** Per trial: from the trigger to the successor's report. */
  trialTimeout: 4000,
  ackTimeout: 2000,
  readyTimeout: 20_000,
  followTimeout: 5000,
  /** After the first new leader: how long to keep counting other followers that also become leader. */
  extraLeaderWindowMs: 500,
  settleMs: 200,
  maxRebuilds: 3,
  /** unix-socket-leader fails trials by design (two followers can both take a stale lock), so its chain may rebuild more often. */
  uslMaxRebuilds: 10,
} as const;

type Kind = 'crash' | 'graceful';
type Lib = 'failover-watch' | 'unix-socket-leader';

interface UslEvent {
  readonly type: string;
  readonly at: number;
  readonly [key: string]: unknown;
}

/** One unix-socket-leader process. */
class UslProcess {
  readonly id: string;
  readonly child: ChildProcess;
  readonly events: UslEvent[] = [];
  readonly exited: Promise<void>;
  #alive = true;

  constructor(id: string, sockPath: string) {
    this.id = id;
    this.child = spawn(process.execPath, [...childArgs(USL_CHILD), sockPath], { cwd: ROOT, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    trackChild(this.child);
    this.child.on('message', (raw) => this.events.push(raw as UslEvent));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => {
        this.#alive = false;
        resolve();
      });
    });
  }

  get alive(): boolean {
    return this.#alive;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.#alive && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, signal);
      } catch {
        // Already gone.
      }
    }
  }

  /** The first event at index >= `from` matching `pred`, waiting at most `timeout` ms (polled every 1 ms). */
  async wait(pred: (e: UslEvent) => boolean, timeout: number, from = 0): Promise<UslEvent | undefined> {
    const until = performance.now() + timeout;
    for (;;) {
      const hit = this.events.slice(from).find(pred);
      if (hit !== undefined || performance.now() >= until) return hit;
      await pause(1);
    }
  }
}

interface UslTrial {
  readonly kind: Kind;
  readonly trial: number;
  readonly ok: boolean;
  readonly cause: string | undefined;
  readonly latencyMs: number | undefined;
  readonly leaders: number;
}

/** The unix-socket-leader chain: a leader and N followers on one socket path, refilled after each trial. */
class UslChain {
  readonly #dir = tempWorkdir('fw-bench-usl-');
  readonly #untrackDir = trackCleanup(this.#dir.cleanup);
  #all: UslProcess[] = [];
  #spawned = 0;
  #generation = 0;
  sockPath = '';
  leader: UslProcess | undefined;
  followers: UslProcess[] = [];
  rebuilds = 0;
  broken: string | undefined;

  #spawn(): UslProcess {
    this.#spawned++;
    const p = new UslProcess(`u-${this.#spawned}`, this.sockPath);
    this.#all.push(p);
    return p;
  }

  async start(): Promise<string | undefined> {
    const cause = await this.#build();
    if (cause !== undefined) this.broken = `could not start: ${cause}`;
    return cause;
  }

  async #build(): Promise<string | undefined> {
    this.#generation++;
    this.sockPath = join(this.#dir.path, `leader-${this.#generation}`);
    const first = this.#spawn();
    this.leader = first;
    this.followers = [];
    const became = await first.wait((e) => e.type === 'leader', SETTINGS.readyTimeout);
    if (became === undefined) return `${first.id} did not become leader within ${SETTINGS.readyTimeout} ms`;
    const cause = await this.#refill();
    if (cause === undefined) await pause(SETTINGS.settleMs);
    return cause;
  }

  async #refill(): Promise<string | undefined> {
    const fresh: UslProcess[] = [];
    while (this.followers.length + fresh.length < SETTINGS.followers) fresh.push(this.#spawn());
    const outcomes = await Promise.all(
      fresh.map(async (p) => {
        const connected = await p.wait((e) => e.type === 'client' || e.type === 'leader', SETTINGS.readyTimeout);
        if (connected === undefined) return `${p.id} did not connect within ${SETTINGS.readyTimeout} ms`;
        return connected.type === 'leader' ? `${p.id} became a second leader on start` : undefined;
      }),
    );
    this.followers.push(...fresh);
    return outcomes.find((o) => o !== undefined);
  }

  async trial(kind: Kind, trial: number): Promise<UslTrial> {
    const old = this.leader;
    if (this.broken !== undefined || old === undefined) return { kind, trial, ok: false, cause: this.broken ?? 'no leader', latencyMs: undefined, leaders: 0 };
    const pool = [...this.followers];
    const marks = pool.map((p) => p.events.length);
    let triggerAt: number | undefined;
    if (kind === 'crash') {
      triggerAt = wallNow();
      old.kill('SIGKILL');
    } else {
      const mark = old.events.length;
      old.child.send({ cmd: 'close' });
      triggerAt = (await old.wait((e) => e.type === 'closeCalled', SETTINGS.ackTimeout, mark))?.at;
    }
    // The first follower to report `leader`, bounded by trialTimeout.
    const until = performance.now() + SETTINGS.trialTimeout;
    let first: { p: UslProcess; at: number } | undefined;
    while (first === undefined && performance.now() < until) {
      for (const [i, p] of pool.entries()) {
        const e = p.events.slice(marks[i]).find((x) => x.type === 'leader');
        if (e !== undefined && (first === undefined || e.at < first.at)) first = { p, at: e.at };
      }
      if (first === undefined) await pause(1);
    }
    if (triggerAt === undefined || first === undefined) {
      const cause = `${first === undefined ? `no new leader within ${SETTINGS.trialTimeout} ms` : 'close() not acknowledged'}${this.#errors(pool, marks)}`;
      await this.#recover();
      return { kind, trial, ok: false, cause, latencyMs: undefined, leaders: 0 };
    }
    const winner = first.p;
    const losers = pool.filter((p) => p !== winner);
    // The others must reconnect (to the winner's socket); then count every follower that became leader.
    const reconnected = await Promise.all(losers.map((l) => l.wait((e) => e.type === 'client', SETTINGS.followTimeout, marks[pool.indexOf(l)])));
    await pause(SETTINGS.extraLeaderWindowMs);
    const leaders = pool.filter((p, i) => p.events.slice(marks[i]).some((e) => e.type === 'leader')).length;
    if (old.alive) {
      await Promise.race([old.exited, pause(SETTINGS.followTimeout)]);
      old.kill('SIGKILL');
    }
    const latencyMs = first.at - triggerAt;
    let cause: string | undefined;
    if (leaders !== 1) cause = `${leaders} followers became leader, expected exactly 1`;
    else if (reconnected.some((r) => r === undefined)) {
      const missing = losers.filter((_, i) => reconnected[i] === undefined).map((l) => `${l.id} (${l.alive ? 'alive' : 'exited'})`);
      cause = `${missing.join(', ')} did not reconnect to the new leader within ${SETTINGS.followTimeout} ms${this.#errors(pool, marks)}`;
    }
    if (cause !== undefined) {
      await this.#recover();
      return { kind, trial, ok: false, cause, latencyMs, leaders };
    }
    this.leader = winner;
    this.followers = losers;
    const refill = await this.#refill();
    if (refill !== undefined) await this.#recover();
    else await pause(SETTINGS.settleMs);
    return { kind, trial, ok: true, cause: undefined, latencyMs, leaders };
  }

  /** The package's `error` events in this trial, for a failure's cause (it stops retrying after one). */
  #errors(pool: readonly UslProcess[], marks: readonly number[]): string {
    const errors = pool.flatMap((p, i) => p.events.slice(marks[i]).filter((e) => e.type === 'error').map((e) => `${p.id}: ${String(e.message)}`));
    return errors.length === 0 ? '' : `; error events: ${errors.join('; ')}`;
  }

  async #killAll(): Promise<void> {
    for (const p of this.#all) p.kill('SIGKILL');
    await Promise.all(this.#all.map((p) => p.exited));
    this.#all = [];
  }

  async #recover(): Promise<void> {
    await this.#killAll();
    if (this.rebuilds >= SETTINGS.uslMaxRebuilds) {
      this.broken = `gave up after ${this.rebuilds} rebuilds`;
      this.leader = undefined;
      return;
    }
    this.rebuilds++;
    const cause = await this.#build();
    if (cause !== undefined) {
      this.broken = `rebuild failed: ${cause}`;
      await this.#killAll();
      this.leader = undefined;
    }
  }

  async close(): Promise<void> {
    await this.#killAll();
    this.#dir.cleanup();
    this.#untrackDir();
  }
}

const METRIC: Readonly<Record<Kind, string>> = {
  crash: "successor's promoteAt / leader event − parent's wallNow() before SIGKILL of the leader",
  graceful: "successor's promoteAt / leader event − old leader's shutdownCalled.at / closeCalled.at",
};

export const uslCompare: Scenario = {
  name: 'usl-compare',
  description: 'failover-watch vs unix-socket-leader (npm): crash and graceful takeover, 1 leader + 3 followers each, chained',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const count = ctx.trials;
    const samples = new Map<string, number[]>();
    const failedBy = new Map<string, number>();
    const failures: TrialFailure[] = [];
    const trials: unknown[] = [];
    const notes: string[] = [];
    const key = (lib: Lib, kind: Kind): string => `${lib}|${kind}`;
    const record = (lib: Lib, kind: Kind, trial: number, latency: number | undefined, cause: string | undefined): void => {
      const k = key(lib, kind);
      if (cause === undefined && latency !== undefined) samples.set(k, [...(samples.get(k) ?? []), latency]);
      else {
        failedBy.set(k, (failedBy.get(k) ?? 0) + 1);
        failures.push({ row: `${this.name} ${lib} ${kind}`, trial, cause: cause ?? 'no sample', ...(lib === 'failover-watch' ? {} : { foreign: true }) });
      }
    };

    // failover-watch, on an abstract unix socket.
    const triggers: Record<Kind, Trigger> = {
      crash: async (primary) => {
        const at = wallNow();
        primary.kill('SIGKILL');
        return at;
      },
      graceful: async (primary) => {
        const ack = waitEvent(primary, (e) => e.type === 'shutdownCalled', SETTINGS.ackTimeout);
        primary.send({ cmd: 'shutdown' });
        return (await ack)?.at;
      },
    };
    const expected: Record<Kind, string> = { crash: 'disconnect', graceful: 'shutdown' };
    const chain = new FailoverChain({ ...SETTINGS, transport: 'ipc', secondaries: SETTINGS.followers, idPrefix: 'fwc-' });
    try {
      const failure = await chain.start();
      if (failure !== undefined) ctx.progress(`  failover-watch: ${failure}`);
      for (const kind of ['crash', 'graceful'] as const) {
        for (let i = 1; i <= count; i++) {
          const t = await chain.trial(i, triggers[kind], SETTINGS.trialTimeout);
          trials.push({ lib: 'failover-watch', kind, ...t });
          let cause = t.cause;
          if (cause === undefined && t.otherPromotes > 0) cause = `${t.otherPromotes + 1} winners`;
          if (cause === undefined && t.reason !== expected[kind]) cause = `promoted with reason '${String(t.reason)}', not '${expected[kind]}'`;
          record('failover-watch', kind, i, t.latencyMs, cause);
          if (i % 10 === 0 || i === count) ctx.progress(`  failover-watch ${kind}: ${i}/${count}`);
        }
      }
      if (chain.broken !== undefined) notes.push(`failover-watch: ${chain.broken}`);
      if (chain.rebuilds > 0) notes.push(`failover-watch: cluster rebuilt ${chain.rebuilds} time(s)`);
    } finally {
      await chain.close();
    }

    // unix-socket-leader: a chain (and a rebuild budget) per kind, so failures in one row
    // cannot leave the other without samples.
    for (const kind of ['crash', 'graceful'] as const) {
      const usl = new UslChain();
      try {
        const failure = await usl.start();
        if (failure !== undefined) ctx.progress(`  unix-socket-leader: ${failure}`);
        for (let i = 1; i <= count; i++) {
          const t = await usl.trial(kind, i);
          trials.push({ lib: 'unix-socket-leader', ...t });
          record('unix-socket-leader', kind, i, t.latencyMs, t.cause);
          if (i % 10 === 0 || i === count) ctx.progress(`  unix-socket-leader ${kind}: ${i}/${count}`);
        }
        if (usl.broken !== undefined) notes.push(`unix-socket-leader ${kind}: ${usl.broken}`);
        if (usl.rebuilds > 0) notes.push(`unix-socket-leader ${kind}: rebuilt ${usl.rebuilds} time(s) (after a failed trial)`);
      } finally {
        await usl.close();
      }
    }
    const splits = failures.filter((f) => f.row.includes('unix-socket-leader') && f.cause.includes('became leader')).length;
    notes.push(
      `unix-socket-leader takes over after its fixed retry delay (50-150 ms random, then a pid lock file and listen()); failover-watch promotes on the socket event. Trials where more than one unix-socket-leader follower became leader: ${splits}`,
    );

    const rows: LatencyRow[] = [];
    for (const kind of ['crash', 'graceful'] as const) {
      for (const lib of ['failover-watch', 'unix-socket-leader'] as const) {
        const s = samples.get(key(lib, kind)) ?? [];
        const summary = summarize(s);
        rows.push({
          kind: 'latency',
          scenario: this.name,
          label: `${kind}: ${lib}${lib === 'failover-watch' ? ' (ipc://@)' : ' 0.1.2'}, 3 followers`,
          metric: METRIC[kind],
          failures: failedBy.get(key(lib, kind)) ?? 0,
          target: undefined,
          summary: summary === undefined ? undefined : rounded(summary),
          samples: s,
        });
      }
    }
    return {
      name: this.name,
      description: this.description,
      settings: { ...SETTINGS, trialsPerRow: count, uslVersion: '0.1.2' },
      rows,
      failures,
      trials,
      notes,
      durationMs: performance.now() - started,
    };
  },
};
