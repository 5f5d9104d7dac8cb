/**
 * hang-failover: the primary is SIGSTOPped (hung: it keeps its endpoint); the secondaries run
 * with `fencing: true`, so after `heartbeatTimeout` plus a failed liveness probe one of them
 * SIGKILLs the hung primary by its announced pid and takes over. One primary and three
 * secondaries (processes), chained.
 *
 * latency = winner's `promoteAt` − the parent's `wallNow()` right before SIGSTOP;
 * overshoot = latency − (heartbeatTimeout + livenessProbeTimeout), what fencing costs beyond its
 * own waits. The stopped process is expected to die by the fence (SIGKILL); the chain kills it
 * itself if it is still alive after the trial (that is reported as a problem and the cluster is
 * rebuilt), and every process is SIGKILLed by pid at the end.
 *
 * @module
 */
import { wallNow } from '../../harness/cluster.js';
import type { BenchContext, LatencyRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { rounded, summarize } from '../stats.js';
import { FailoverChain, timelineNote, TRANSPORT_LABEL, type ChainTrial } from '../lib/failover-chain.js';

const SETTINGS = {
  transport: 'tcp' as const,
  secondaries: 3,
  heartbeatInterval: 50,
  heartbeatTimeout: 300,
  livenessProbeTimeout: 200,
  /** Each trial costs ~0.5 s of waiting plus a respawn: 20 is enough for the shape. */
  maxTrials: 20,
  /** Per trial: from SIGSTOP to a secondary's onPromote. */
  trialTimeout: 4000,
  readyTimeout: 20_000,
  followTimeout: 5000,
  settleMs: 200,
  maxRebuilds: 3,
} as const;

export const hangFailover: Scenario = {
  name: 'hang-failover',
  description: 'primary SIGSTOP → fenced by a secondary → successor onPromote, 1 primary + 3 secondaries, fencing on',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const label = TRANSPORT_LABEL[SETTINGS.transport];
    const budget = SETTINGS.heartbeatTimeout + SETTINGS.livenessProbeTimeout;
    const count = Math.min(ctx.trials, SETTINGS.maxTrials);
    const failures: TrialFailure[] = [];
    const trials: ChainTrial[] = [];
    const notes: string[] = [];
    const samples: number[] = [];
    const reasons = new Map<string, number>();
    const exits = new Map<string, number>();
    let failed = 0;
    const chain = new FailoverChain({
      ...SETTINGS,
      idPrefix: 'h-',
      nodeOptions: { fencing: true, livenessProbeTimeout: SETTINGS.livenessProbeTimeout },
    });
    try {
      const startFailure = await chain.start();
      if (startFailure !== undefined) ctx.progress(`  ${label}: ${startFailure}`);
      for (let i = 1; i <= count; i++) {
        const t = await chain.trial(
          i,
          async (primary) => {
            const stopAt = wallNow();
            primary.kill('SIGSTOP');
            return stopAt;
          },
          SETTINGS.trialTimeout,
        );
        trials.push(t);
        if (t.reason !== undefined) reasons.set(t.reason, (reasons.get(t.reason) ?? 0) + 1);
        const exit = t.oldExit === undefined ? 'unknown' : (t.oldExit.signal ?? `code ${String(t.oldExit.code)}`);
        exits.set(exit, (exits.get(exit) ?? 0) + 1);
        let cause = t.cause;
        if (cause === undefined && t.otherPromotes > 0) cause = `${t.otherPromotes + 1} winners`;
        if (cause === undefined && t.latencyMs !== undefined) samples.push(t.latencyMs);
        else {
          failed++;
          failures.push({ row: `${this.name} ${label}`, trial: i, cause: cause ?? 'no sample' });
        }
        for (const p of t.problems) notes.push(`trial ${i}: ${p}`);
        if (i % 5 === 0 || i === count) ctx.progress(`  ${label}: ${i}/${count} trials, ${failed} failed`);
      }
      if (chain.broken !== undefined) notes.push(chain.broken);
      if (chain.rebuilds > 0) notes.push(`cluster rebuilt ${chain.rebuilds} time(s)`);
      notes.push(timelineNote(trials));
    } finally {
      // SIGKILL by pid whatever is left, the stopped primary included (SIGKILL ends a stopped process).
      await chain.close();
    }
    const counts = [...reasons].map(([r, n]) => `${r} ${n}`);
    notes.push(`promote reasons: ${counts.length > 0 ? counts.join(', ') : 'none'}; failed ${failed}`);
    notes.push(
      `a negative overshoot is expected: silence counts from the last heartbeat received, up to heartbeatInterval (${SETTINGS.heartbeatInterval} ms) before the SIGSTOP`,
    );
    notes.push(`how the SIGSTOPped primary ended: ${[...exits].map(([e, n]) => `${e} ${n}`).join(', ')} (SIGKILL = fenced, unless a problem line says the chain killed it)`);

    const latency = summarize(samples);
    const overshootSamples = samples.map((s) => s - budget);
    const overshoot = summarize(overshootSamples);
    const rows: LatencyRow[] = [
      {
        kind: 'latency',
        scenario: this.name,
        label: `${label}, fencing, 3 secondaries`,
        metric: "winner's promoteAt − parent's wallNow() before SIGSTOP",
        failures: failed,
        target: undefined,
        summary: latency === undefined ? undefined : rounded(latency),
        samples,
      },
      {
        kind: 'latency',
        scenario: this.name,
        label: `${label}, fencing, overshoot`,
        metric: `the same − (heartbeatTimeout ${SETTINGS.heartbeatTimeout} + livenessProbeTimeout ${SETTINGS.livenessProbeTimeout} ms)`,
        failures: failed,
        target: undefined,
        summary: overshoot === undefined ? undefined : rounded(overshoot),
        samples: overshootSamples,
      },
    ];
    return {
      name: this.name,
      description: this.description,
      settings: {
        ...SETTINGS,
        trials: count,
        fencing: true,
        measuredFrom: "parent's wallNow() right before process.kill(pid, 'SIGSTOP')",
        measuredTo: 'promote.promoteAt (child, when onPromote was called)',
      },
      rows,
      failures,
      trials,
      notes,
      durationMs: performance.now() - started,
    };
  },
};
