/**
 * silence-failover: the primary is SIGKILLed; how long until a secondary's `onPromote`.
 * One primary and two secondaries (processes) per transport, chained like graceful-handover.
 * latency = winner's `promoteAt` − the parent's `wallNow()` taken just before `kill`;
 * overshoot = latency − heartbeatTimeout.
 *
 * The promotion reason is recorded per trial and the rows are grouped by it: with silence
 * detection alone it is `silence` (latency ≳ heartbeatTimeout, overshoot ≥ 0); with crash
 * detection (the SUB socket's disconnect, confirmed by a bind) it is `disconnect` and the
 * latency is far below heartbeatTimeout (negative overshoot). Both are shown as they come.
 *
 * @module
 */
import { wallNow } from '../../harness/cluster.js';
import type { BenchContext, LatencyRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { rounded, summarize } from '../stats.js';
import { FailoverChain, lostRacesNote, timelineNote, TRANSPORT_LABEL, type ChainTrial, type TransportKind } from '../lib/failover-chain.js';

const SETTINGS = {
  secondaries: 2,
  heartbeatInterval: 50,
  heartbeatTimeout: 300,
  transports: ['tcp', 'ipc'] as TransportKind[],
  /** Per trial: from the kill to a secondary's onPromote. */
  trialTimeout: 3000,
  readyTimeout: 20_000,
  followTimeout: 5000,
  settleMs: 200,
  maxRebuilds: 3,
} as const;

export const silenceFailover: Scenario = {
  name: 'silence-failover',
  description: 'primary SIGKILL → successor onPromote, 1 primary + 2 secondaries, chained; grouped by promote reason',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const rows: LatencyRow[] = [];
    const failures: TrialFailure[] = [];
    const trials: Array<ChainTrial & { transport: TransportKind; overshootMs: number | undefined }> = [];
    const notes: string[] = [];
    const timeout = SETTINGS.heartbeatTimeout;

    for (const transport of SETTINGS.transports) {
      const label = TRANSPORT_LABEL[transport];
      const chain = new FailoverChain({ ...SETTINGS, transport, idPrefix: `s${transport}-` });
      const byReason = new Map<string, number[]>();
      let failed = 0;
      try {
        const startFailure = await chain.start();
        if (startFailure !== undefined) ctx.progress(`  ${label}: ${startFailure}`);
        for (let i = 1; i <= ctx.trials; i++) {
          const t = await chain.trial(
            i,
            async (primary) => {
              const killAt = wallNow();
              primary.kill('SIGKILL');
              return killAt;
            },
            SETTINGS.trialTimeout,
          );
          trials.push({ ...t, transport, overshootMs: t.latencyMs === undefined ? undefined : t.latencyMs - timeout });
          if (t.ok && t.latencyMs !== undefined) {
            const reason = t.reason ?? 'unknown';
            const list = byReason.get(reason) ?? [];
            list.push(t.latencyMs);
            byReason.set(reason, list);
          } else {
            failed++;
            failures.push({ row: `${this.name} ${label}`, trial: i, cause: t.cause ?? 'no sample' });
          }
          for (const p of t.problems) notes.push(`${label} trial ${i}: ${p}`);
          if (i % 10 === 0 || i === ctx.trials) ctx.progress(`  ${label}: ${i}/${ctx.trials} trials, ${failed} failed`);
        }
        if (chain.broken !== undefined) notes.push(`${label}: ${chain.broken}`);
        if (chain.rebuilds > 0) notes.push(`${label}: cluster rebuilt ${chain.rebuilds} time(s)`);
        const own = trials.filter((t) => t.transport === transport);
        notes.push(`${label}: ${timelineNote(own)}`, `${label}: ${lostRacesNote(own)}`);
      } finally {
        await chain.close();
      }

      const counts = [...byReason].map(([reason, s]) => `${reason} ${s.length}`);
      notes.push(`${label}: promote reasons: ${counts.length > 0 ? counts.join(', ') : 'none'}; failed ${failed}`);
      for (const [reason, samples] of [...byReason].sort(([a], [b]) => a.localeCompare(b))) {
        const latency = summarize(samples);
        const overshootSamples = samples.map((s) => s - timeout);
        const overshoot = summarize(overshootSamples);
        rows.push({
          kind: 'latency',
          scenario: this.name,
          label: `${label}, reason=${reason}`,
          metric: "winner's promoteAt − parent's wallNow() before SIGKILL",
          failures: 0,
          target: undefined,
          summary: latency === undefined ? undefined : rounded(latency),
          samples,
        });
        rows.push({
          kind: 'latency',
          scenario: this.name,
          label: `${label}, reason=${reason}, overshoot`,
          metric: `the same − heartbeatTimeout (${timeout} ms)`,
          failures: 0,
          target: undefined,
          summary: overshoot === undefined ? undefined : rounded(overshoot),
          samples: overshootSamples,
        });
      }
      if (failed > 0 || byReason.size === 0) {
        rows.push({
          kind: 'latency',
          scenario: this.name,
          label: `${label}, no promotion`,
          metric: `trials without an onPromote within ${SETTINGS.trialTimeout} ms`,
          failures: failed,
          target: undefined,
          summary: undefined,
          samples: [],
        });
      }
    }

    return {
      name: this.name,
      description: this.description,
      settings: { ...SETTINGS, trials: ctx.trials, measuredFrom: "parent's wallNow() right before process.kill(pid, 'SIGKILL')", measuredTo: 'promote.promoteAt (child, when onPromote was called)' },
      rows,
      failures,
      trials,
      notes,
      durationMs: performance.now() - started,
    };
  },
};
