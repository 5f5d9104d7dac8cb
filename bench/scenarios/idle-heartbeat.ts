/**
 * idle-heartbeat: what a watcher at rest costs next to a bare zeromq.js socket doing the same
 * heartbeat traffic, measured side by side in one run (issue 17, "What it costs at rest").
 *
 * Six processes (bench/lib/idle-node.ts) at one heartbeat rate, each on its own endpoint pair:
 * a watcher primary and a watcher secondary (one cluster); a bare PUB sending the primary's
 * msgpack heartbeat and a bare SUB reading it (the issue's comparison); and a bare XPUB with
 * its own SUB connected (what a primary needs at the least: it hears subscribers, and its own
 * heartbeats come back through the endpoint) with one more bare SUB reading it, so that every
 * sender has one remote subscriber. After a warm-up (the watchers' rehearsals are over by
 * then), `trials` windows of `--idle-seconds` each; in each window the CPU time of every thread
 * of every process (`/proc/<pid>/task/<tid>/schedstat`, nanoseconds) and its context switches
 * (about one per wake-up of a thread). Rows: each process's median CPU% over the windows; notes:
 * the median of the per-window ratios primary / bare PUB, secondary / bare SUB and primary /
 * bare XPUB+SUB, and wake-ups per heartbeat. All six share the host's load in the same windows.
 *
 * Linux only (reads /proc); elsewhere it reports no rows and says why.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childArgs, childRuntime, REHEARSALS_ENV, ROOT } from '../../harness/child-runtime.js';
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import type { IdleNodeConfig, IdleNodeMode } from '../lib/idle-node.js';
import { pause } from '../lib/events.js';
import { trackChild, trackCleanup } from '../lib/live-processes.js';
import { procAvailable, readHelperCpuMs, readProc, readThreads, type ThreadsSample } from '../lib/proc-usage.js';
import type { BenchContext, ResourceRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { round2 } from '../stats.js';

const CHILD = fileURLToPath(new URL('../lib/idle-node.ts', import.meta.url));

const BASE_SETTINGS = {
  heartbeatTimeout: 5000,
  endpoint: 'ipc://@ (abstract, unique per pair)',
  // What runs for days is what matters. At 10 Hz V8 is still compiling the per-message code
  // into its optimised tiers for minutes after start (bench/README.md, "Cost at rest"): the
  // windows start once its compiler is done in every process, or after maxWarmupMs at most.
  warmupMs: 30_000,
  quickWarmupMs: 3000,
  /** Done compiling: no process's helper threads used this much in `settleSteps` steps in a row. */
  settledHelperMs: 1,
  settleStepMs: 10_000,
  settleSteps: 3,
  maxWarmupMs: 300_000,
  maxWindows: 10,
  readyTimeout: 20_000,
  target: 1.3,
} as const;

interface Subject {
  readonly key: 'primary' | 'secondary' | 'barePub' | 'bareSub' | 'barePair' | 'pairSub';
  readonly label: string;
  readonly mode: IdleNodeMode;
  readonly pair: 'watcher' | 'bare' | 'pair';
}

const SUBJECTS: readonly Subject[] = [
  { key: 'primary', label: 'watcher primary', mode: 'watcher-primary', pair: 'watcher' },
  { key: 'secondary', label: 'watcher secondary', mode: 'watcher-secondary', pair: 'watcher' },
  { key: 'barePub', label: 'bare PUB (send only)', mode: 'bare-pub', pair: 'bare' },
  { key: 'bareSub', label: 'bare SUB (of the bare PUB)', mode: 'bare-sub', pair: 'bare' },
  { key: 'barePair', label: 'bare XPUB + own SUB', mode: 'bare-pair', pair: 'pair' },
  { key: 'pairSub', label: 'bare SUB (of the XPUB)', mode: 'bare-sub', pair: 'pair' },
];

interface Child {
  readonly subject: Subject;
  readonly process: ChildProcess;
  readonly pid: number;
  stderr: string;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/**
 * The scenario at one heartbeat rate. At 10 Hz (the issue's rate) each heartbeat wakes processes
 * that are otherwise asleep, so the figures hold what a wake-up costs with cold caches; at 200 Hz
 * (`idle-heartbeat-200hz`) the code stays warm and the ratio is the cost per message, above the
 * noise of a fraction of a percent of a core.
 */
function idleScenario(name: string, heartbeatInterval: number, description: string): Scenario {
  const SETTINGS = { ...BASE_SETTINGS, heartbeatInterval };
  return {
  name,
  description,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const windowMs = ctx.idleSeconds * 1000;
    const windows = Math.max(1, Math.min(ctx.trials, SETTINGS.maxWindows));
    const warmupMs = ctx.quick ? SETTINGS.quickWarmupMs : SETTINGS.warmupMs;
    const settings: Record<string, unknown> = { ...SETTINGS, windowMs, windows, warmupMsUsed: warmupMs, childProcesses: childRuntime() };
    const rows: ResourceRow[] = [];
    const failures: TrialFailure[] = [];
    const notes: string[] = [];
    const trials: Array<Record<string, unknown>> = [];
    const result = (): ScenarioResult => ({
      name: this.name,
      description: this.description,
      settings,
      rows,
      failures,
      trials,
      notes,
      durationMs: performance.now() - started,
    });
    if (!procAvailable() || readThreads(process.pid) === undefined) {
      notes.push('skipped: /proc/<pid>/task/<tid>/schedstat is not available on this platform');
      return result();
    }

    const workdir = tempWorkdir('fw-bench-idle-hb-');
    const untrackWorkdir = trackCleanup(workdir.cleanup);
    const children: Child[] = [];
    try {
      const endpoints = { watcher: uniqueIpc('fw-idle-w'), bare: uniqueIpc('fw-idle-b'), pair: uniqueIpc('fw-idle-p') };
      const rehearsalsEnv = process.env[REHEARSALS_ENV];
      const start = async (subject: Subject): Promise<Child> => {
        const config: IdleNodeConfig = {
          mode: subject.mode,
          endpoint: endpoints[subject.pair],
          instanceId: `idle-${subject.key}`,
          heartbeatInterval: SETTINGS.heartbeatInterval,
          heartbeatTimeout: SETTINGS.heartbeatTimeout,
          workdir: workdir.path,
          ...(rehearsalsEnv === undefined || rehearsalsEnv === '' ? {} : { rehearsals: Number(rehearsalsEnv) }),
        };
        const proc = spawn(process.execPath, [...childArgs(CHILD), JSON.stringify(config)], {
          cwd: ROOT,
          stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        });
        trackChild(proc);
        const child: Child = { subject, process: proc, pid: proc.pid ?? -1, stderr: '' };
        proc.stderr?.on('data', (d: Buffer) => {
          child.stderr = (child.stderr + d.toString()).slice(-2000);
        });
        children.push(child);
        const ready = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), SETTINGS.readyTimeout);
          proc.on('message', (m: { type?: string }) => {
            if (m.type !== 'ready') return;
            clearTimeout(timer);
            resolve(true);
          });
          proc.once('exit', () => {
            clearTimeout(timer);
            resolve(false);
          });
        });
        if (!ready) throw new Error(`${subject.label} not ready within ${SETTINGS.readyTimeout} ms: ${child.stderr.slice(-500)}`);
        return child;
      };
      // Senders first (a subscriber is ready once it heard one), one at a time.
      for (const key of ['primary', 'secondary', 'barePub', 'bareSub', 'barePair', 'pairSub'] as const) {
        const subject = SUBJECTS.find((s) => s.key === key) as Subject;
        await start(subject);
      }
      ctx.progress(`  warm-up ${warmupMs} ms, then until V8 is done compiling (at most ${SETTINGS.maxWarmupMs} ms), then ${windows} window(s) of ${windowMs} ms`);
      await pause(warmupMs);
      const settled = ctx.quick ? { ms: warmupMs, done: false, helperMs: [] as number[] } : await settle(children, warmupMs);
      settings.warmupMsUsed = settled.ms;
      notes.push(
        settled.done
          ? `warm-up ${Math.round(settled.ms / 1000)} s: V8's compiler was done in every process (helper threads under ${SETTINGS.settledHelperMs} ms in each of ${SETTINGS.settleSteps} steps of ${SETTINGS.settleStepMs / 1000} s)`
          : `warm-up ${Math.round(settled.ms / 1000)} s: ${ctx.quick ? 'quick run, not waited for V8' : `V8 still compiling somewhere (helper threads ${settled.helperMs.map((x) => x.toFixed(1)).join('/')} ms in the last ${SETTINGS.settleStepMs / 1000} s)`}`,
      );

      const helperMsInWindows: number[][] = [];
      const perWindow: Array<Record<Subject['key'], { cpuPercent: number; cpuMs: number; switchesPerBeat: number; wallMs: number }>> = [];
      for (let w = 1; w <= windows; w++) {
        const first = children.map((c) => readThreads(c.pid));
        const helpersBefore = children.map((c) => readHelperCpuMs(c.pid) ?? Number.NaN);
        await pause(windowMs);
        const last = children.map((c) => readThreads(c.pid));
        helperMsInWindows.push(children.map((c, i) => (readHelperCpuMs(c.pid) ?? Number.NaN) - (helpersBefore[i] ?? Number.NaN)));
        const record = {} as Record<Subject['key'], { cpuPercent: number; cpuMs: number; switchesPerBeat: number; wallMs: number }>;
        let complete = true;
        children.forEach((c, i) => {
          const a: ThreadsSample | undefined = first[i];
          const b: ThreadsSample | undefined = last[i];
          if (a === undefined || b === undefined) {
            complete = false;
            failures.push({ row: `${this.name} ${c.subject.label}`, trial: w, cause: `process gone: ${c.stderr.slice(-300)}` });
            return;
          }
          const wallMs = b.at - a.at;
          const cpuMs = b.cpuMs - a.cpuMs;
          const beats = wallMs / SETTINGS.heartbeatInterval;
          record[c.subject.key] = { cpuPercent: (cpuMs / wallMs) * 100, cpuMs, switchesPerBeat: (b.switches - a.switches) / beats, wallMs };
        });
        if (!complete) break;
        perWindow.push(record);
        const r = record;
        trials.push({
          window: w,
          ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, { cpuPercent: round2(v.cpuPercent), cpuMs: round2(v.cpuMs), switchesPerBeat: round2(v.switchesPerBeat) }])),
          ratios: {
            primaryToBarePub: round2(r.primary.cpuPercent / r.barePub.cpuPercent),
            secondaryToBareSub: round2(r.secondary.cpuPercent / r.bareSub.cpuPercent),
            primaryToBarePair: round2(r.primary.cpuPercent / r.barePair.cpuPercent),
          },
        });
        ctx.progress(
          `  window ${w}/${windows}: primary ${r.primary.cpuPercent.toFixed(2)} % / bare PUB ${r.barePub.cpuPercent.toFixed(2)} %, ` +
            `secondary ${r.secondary.cpuPercent.toFixed(2)} % / bare SUB ${r.bareSub.cpuPercent.toFixed(2)} %`,
        );
      }

      // Sanity: every sender sent about one heartbeat per interval, every subscriber received them.
      const statuses = await Promise.all(children.map((c) => status(c)));
      notes.push(
        `sanity (since start): ${children
          .map((c, i) => `${c.subject.key} sent ${String(statuses[i]?.sent ?? '?')} received ${String(statuses[i]?.received ?? '?')}`)
          .join('; ')}`,
      );

      if (perWindow.length === 0) return result();
      for (const c of children) {
        const xs = perWindow.map((r) => r[c.subject.key]);
        const mem = readProc(c.pid);
        rows.push({
          kind: 'resource',
          scenario: this.name,
          label: c.subject.label,
          pid: c.pid,
          windowMs: round2(median(xs.map((x) => x.wallMs))),
          cpuPercent: round2(median(xs.map((x) => x.cpuPercent))),
          cpuMs: round2(median(xs.map((x) => x.cpuMs))),
          rssMiB: round2((mem?.rssKiB ?? Number.NaN) / 1024),
          peakRssMiB: round2((mem?.hwmKiB ?? Number.NaN) / 1024),
          samples: xs.map((x, i) => ({ t: i, cpuMs: round2(x.cpuMs), rssMiB: round2((mem?.rssKiB ?? Number.NaN) / 1024) })),
        });
      }
      const ratio = (a: Subject['key'], b: Subject['key']): number => median(perWindow.map((r) => r[a].cpuPercent / r[b].cpuPercent));
      const pPub = ratio('primary', 'barePub');
      const sSub = ratio('secondary', 'bareSub');
      const pPair = ratio('primary', 'barePair');
      const verdict = (x: number): string => (x <= SETTINGS.target ? `within ${SETTINGS.target}x` : `above ${SETTINGS.target}x`);
      notes.push(
        `ratios (median of ${perWindow.length} windows of ${windowMs} ms): primary / bare PUB ${pPub.toFixed(2)} (${verdict(pPub)}); ` +
          `secondary / bare SUB ${sSub.toFixed(2)} (${verdict(sSub)}); primary / bare XPUB+own SUB ${pPair.toFixed(2)}`,
      );
      notes.push(
        `V8's helper threads (its compiler) during the windows, ms in all: ${children
          .map((c, i) => `${c.subject.key} ${helperMsInWindows.reduce((sum, w) => sum + (w[i] ?? 0), 0).toFixed(1)}`)
          .join(', ')}`,
      );
      const perBeat = (k: Subject['key']): string => median(perWindow.map((r) => r[k].switchesPerBeat)).toFixed(2);
      notes.push(
        `thread wake-ups (context switches) per heartbeat, median: ${children.map((c) => `${c.subject.key} ${perBeat(c.subject.key)}`).join(', ')}`,
      );
      notes.push(
        `CPU is every thread's time on a CPU (schedstat, ns) over wall time, in % of one core; heartbeatInterval ${SETTINGS.heartbeatInterval} ms; children run as ${childRuntime()}`,
      );
      return result();
    } finally {
      await Promise.all(children.map((c) => end(c)));
      workdir.cleanup();
      untrackWorkdir();
    }
  },
  };
}

/**
 * Waits, in steps of `settleStepMs`, until the helper threads of every child (V8's compiler)
 * used less than `settledHelperMs` in one step, or `maxWarmupMs` in all have passed.
 */
async function settle(children: readonly Child[], elapsedMs: number): Promise<{ ms: number; done: boolean; helperMs: number[] }> {
  let ms = elapsedMs;
  let helperMs: number[] = [];
  let quiet = 0;
  while (ms < BASE_SETTINGS.maxWarmupMs) {
    const before = children.map((c) => readHelperCpuMs(c.pid) ?? Number.NaN);
    await pause(BASE_SETTINGS.settleStepMs);
    ms += BASE_SETTINGS.settleStepMs;
    helperMs = children.map((c, i) => (readHelperCpuMs(c.pid) ?? Number.NaN) - (before[i] ?? Number.NaN));
    quiet = helperMs.every((x) => x < BASE_SETTINGS.settledHelperMs) ? quiet + 1 : 0;
    if (quiet >= BASE_SETTINGS.settleSteps) return { ms, done: true, helperMs };
  }
  return { ms, done: false, helperMs };
}

export const idleHeartbeat: Scenario = idleScenario(
  'idle-heartbeat',
  100,
  'CPU at rest at 10 Hz: watcher primary / secondary next to a bare zeromq.js PUB / SUB, one run',
);

export const idleHeartbeatFast: Scenario = idleScenario(
  'idle-heartbeat-200hz',
  5,
  'CPU per message at 200 Hz (code kept warm): watcher primary / secondary next to bare sockets, one run',
);

async function status(child: Child): Promise<Record<string, unknown> | undefined> {
  if (!child.process.connected) return undefined;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 5000);
    const onMessage = (m: Record<string, unknown>): void => {
      if (m.type !== 'status') return;
      clearTimeout(timer);
      child.process.off('message', onMessage);
      resolve(m);
    };
    child.process.on('message', onMessage);
    child.process.send({ cmd: 'status' });
  });
}

/** Closes the child's IPC channel (it shuts down and exits); SIGKILL by pid after 5 s. */
async function end(child: Child): Promise<void> {
  const proc = child.process;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  if (proc.connected) proc.disconnect();
  const timer = setTimeout(() => {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }, 5000);
  await gone;
  clearTimeout(timer);
}
