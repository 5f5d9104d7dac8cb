/**
 * idle-cost: what a watcher process costs while nothing happens. A primary and one secondary
 * (harness processes, heartbeatInterval 1000) run for a window after a warm-up; CPU% is
 * (utime + stime) over wall time from `/proc/<pid>/stat`, memory is VmRSS / VmHWM from
 * `/proc/<pid>/status`. A bare process of the watchers' runtime (`node`, or `node --import
 * tsx` with `--tsx`) idles alongside as the floor the harness itself costs, so the watcher's own
 * share can be read off.
 *
 * Linux only (reads /proc); elsewhere it reports no rows and says why.
 *
 * @module
 */
import { childrenCompiled, childRuntime } from '../../harness/child-runtime.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster, tempWorkdir, uniqueIpc, type WatcherProcess } from '../../harness/cluster.js';
import type { BenchContext, ResourceRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { round2 } from '../stats.js';
import { pause, raceEvent, waitEvent } from '../lib/events.js';
import { trackChild, trackCleanup, trackCluster } from '../lib/live-processes.js';
import { clockTicksPerSecond, procAvailable, readProc, type ProcSample } from '../lib/proc-usage.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const SETTINGS = {
  heartbeatInterval: 1000,
  heartbeatTimeout: 3000,
  endpoint: 'ipc://@ (abstract, unique)',
  warmupMs: 2000,
  quickWarmupMs: 1000,
  sampleEveryMs: 1000,
  readyTimeout: 20_000,
  followTimeout: 5000,
} as const;

/** An idle node + tsx process that ends when the parent's IPC channel closes. */
const BASELINE_SCRIPT =
  "process.on('disconnect', () => process.exit(0)); setInterval(() => {}, 1 << 30); process.send?.({ type: 'ready' });";

export const idleCost: Scenario = {
  name: 'idle-cost',
  description: 'CPU% and RSS of an idle primary and secondary (heartbeatInterval 1000) over a window',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const windowMs = ctx.idleSeconds * 1000;
    const warmupMs = ctx.quick ? SETTINGS.quickWarmupMs : SETTINGS.warmupMs;
    const settings = { ...SETTINGS, windowMs, warmupMsUsed: warmupMs };
    const rows: ResourceRow[] = [];
    const failures: TrialFailure[] = [];
    const notes: string[] = [];
    const result = (trials: unknown[]): ScenarioResult => ({
      name: this.name,
      description: this.description,
      settings,
      rows,
      failures,
      trials,
      notes,
      durationMs: performance.now() - started,
    });
    if (!procAvailable()) {
      notes.push('skipped: /proc is not available on this platform');
      return result([]);
    }

    const workdir = tempWorkdir('fw-bench-idle-');
    const untrackWorkdir = trackCleanup(workdir.cleanup);
    const cluster = new Cluster();
    const untrack = trackCluster(cluster);
    let baseline: ChildProcess | undefined;
    try {
      const endpoint = uniqueIpc('fw-bench-idle');
      const base = { endpoint, workdir: workdir.path, heartbeatInterval: SETTINGS.heartbeatInterval, heartbeatTimeout: SETTINGS.heartbeatTimeout };
      const primary = cluster.spawn({ ...base, instanceId: 'idle-primary', role: 'primary' });
      // The floor is a bare process of the runtime the watchers run on (compiled: plain node).
      const compiled = childrenCompiled();
      baseline = spawn(process.execPath, [...(compiled ? [] : ['--import', 'tsx']), '-e', BASELINE_SCRIPT], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      });
      trackChild(baseline);
      const baselineReady = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), SETTINGS.readyTimeout);
        baseline?.once('message', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      const pReady = await waitEvent(primary, (e) => e.type === 'ready', SETTINGS.readyTimeout);
      if (pReady === undefined) throw new Error(`primary not ready within ${SETTINGS.readyTimeout} ms: ${primary.stderr.slice(-500)}`);
      const secondary = cluster.spawn({ ...base, instanceId: 'idle-secondary', role: 'secondary' });
      const sReady = await waitEvent(secondary, (e) => e.type === 'ready', SETTINGS.readyTimeout);
      const follows = await waitEvent(
        secondary,
        (e) => e.type === 'primaryChanged' && e.instanceId === primary.id,
        SETTINGS.followTimeout,
      );
      if (sReady === undefined || follows === undefined) throw new Error('secondary not ready / not following the primary');
      if (!(await baselineReady)) notes.push('the baseline process did not report ready; its figures may include start-up');

      const subjects: Array<{ label: string; pid: number }> = [
        { label: 'primary (watcher process)', pid: primary.pid },
        { label: 'secondary (watcher process)', pid: secondary.pid },
        { label: `baseline: idle ${compiled ? 'node' : 'node --import tsx'}`, pid: baseline.pid ?? -1 },
      ];
      ctx.progress(`  warm-up ${warmupMs} ms, then a ${windowMs} ms window`);
      await pause(warmupMs);
      const series = subjects.map(() => [] as ProcSample[]);
      const steps = Math.max(1, Math.round(windowMs / SETTINGS.sampleEveryMs));
      const sampleAll = (): void =>
        subjects.forEach((s, i) => {
          const sample = readProc(s.pid);
          if (sample !== undefined) series[i]?.push(sample);
        });
      sampleAll();
      for (let step = 1; step <= steps; step++) {
        await pause(SETTINGS.sampleEveryMs);
        sampleAll();
      }

      const [pStatus, sStatus] = await Promise.all([status(primary), status(secondary)]);
      const sent = (pStatus?.heartbeatsSent as number | undefined) ?? undefined;
      const seen = (sStatus?.heartbeatsSeen as number | undefined) ?? undefined;
      notes.push(
        `sanity: the primary sent ${sent ?? '?'} heartbeats and the secondary saw ${seen ?? '?'} since start (expect about one per ${SETTINGS.heartbeatInterval} ms)`,
      );
      notes.push(
        `figures are per pid (all threads); CPU time counts in clock ticks of ${(1000 / clockTicksPerSecond()).toFixed(0)} ms; watchers run as ${childRuntime()}, and the baseline row is a bare process of the same runtime`,
      );

      subjects.forEach((s, i) => {
        const samples = series[i] ?? [];
        const first = samples[0];
        const last = samples.at(-1);
        if (first === undefined || last === undefined || samples.length < 2) {
          failures.push({ row: `${this.name} ${s.label}`, trial: 1, cause: 'process gone before the window ended' });
          return;
        }
        const wall = last.at - first.at;
        const cpu = last.cpuMs - first.cpuMs;
        rows.push({
          kind: 'resource',
          scenario: this.name,
          label: s.label,
          pid: s.pid,
          windowMs: round2(wall),
          cpuPercent: round2((cpu / wall) * 100),
          cpuMs: round2(cpu),
          rssMiB: round2(last.rssKiB / 1024),
          peakRssMiB: round2(last.hwmKiB / 1024),
          samples: samples.map((x) => ({ t: round2(x.at - first.at), cpuMs: round2(x.cpuMs - first.cpuMs), rssMiB: round2(x.rssKiB / 1024) })),
        });
      });
      return result([{ primaryStatus: pStatus, secondaryStatus: sStatus }]);
    } finally {
      await cluster.stopAll();
      untrack();
      if (baseline !== undefined && baseline.exitCode === null && baseline.signalCode === null && baseline.pid !== undefined) {
        const gone = new Promise<void>((resolve) => baseline?.once('exit', () => resolve()));
        try {
          process.kill(baseline.pid, 'SIGKILL');
        } catch {
          // Exited meanwhile; its exit event still comes.
        }
        await gone;
      }
      workdir.cleanup();
      untrackWorkdir();
    }
  },
};

async function status(node: WatcherProcess): Promise<Record<string, unknown> | undefined> {
  const reply = raceEvent([node], (e) => e.type === 'status', SETTINGS.followTimeout);
  node.send({ cmd: 'status' });
  return (await reply)?.event.status as Record<string, unknown> | undefined;
}
