/**
 * host-floor: what this host costs before failover-watch does anything (`bench/lib/host-floor.ts`).
 * No targets: the rows say how far below them the takeover rows could go on this host. It runs
 * first; on a virtual machine it drifts within the hour, so `crash-failover` measures the
 * teardown again right before its own rows (in its notes).
 *
 * - teardown: SIGKILL of a bare node + zeromq process (about 51 MiB) → a SUB's disconnect. No
 *   crash takeover can be faster (crash-failover's victims are watcher processes of about 56 MiB,
 *   which take somewhat longer).
 * - a system call and an XPUB send right after the process slept 30 ms, and back to back: what
 *   each of the few dozen calls of a takeover costs on a host whose CPUs were idle.
 *
 * @module
 */
import type { BenchContext, LatencyRow, Scenario, ScenarioResult } from '../scenario.js';
import { rounded, summarize } from '../stats.js';
import { measureTeardown, measureWake } from '../lib/host-floor.js';

const SETTINGS = { teardownTrials: 20, quickTeardownTrials: 5, wakeTrials: 100, quickWakeTrials: 20, sleepMs: 30 } as const;

function row(label: string, metric: string, samples: number[]): LatencyRow {
  const summary = summarize(samples);
  return { kind: 'latency', scenario: 'host-floor', label, metric, failures: 0, target: undefined, summary: summary === undefined ? undefined : rounded(summary), samples };
}

export const hostFloor: Scenario = {
  name: 'host-floor',
  description: 'the host alone: kill → disconnect of a bare process, a system call and an XPUB send after sleeping',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const teardown = await measureTeardown(0, ctx.quick ? SETTINGS.quickTeardownTrials : SETTINGS.teardownTrials);
    const wake = await measureWake(ctx.quick ? SETTINGS.quickWakeTrials : SETTINGS.wakeTrials, SETTINGS.sleepMs);
    const rows = [
      row('kill -> disconnect, bare node + zeromq', 'SIGKILL of a bare node + zeromq process → SUB disconnect event', teardown.samples),
      row('fstat after a 30 ms sleep', 'one fstat() system call, first after the process slept', wake.syscallAfterSleep),
      row('fstat back to back', 'one fstat() system call, right after another', wake.syscallBackToBack),
      row('XPUB send after a 30 ms sleep', 'one XPUB send to 4 subscribers, first after the process slept', wake.sendAfterSleep),
      row('XPUB send back to back', 'one XPUB send to 4 subscribers, right after another', wake.sendBackToBack),
    ];
    const notes = [`the teardown victim's RSS was ${(teardown.rssBytes / 2 ** 20).toFixed(0)} MiB`];
    return { name: this.name, description: this.description, settings: SETTINGS, rows, failures: [], trials: [], notes, durationMs: performance.now() - started };
  },
};
