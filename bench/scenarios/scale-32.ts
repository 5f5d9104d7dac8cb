/**
 * scale-32: one primary and 32 secondary processes on one host (started in parallel batches,
 * each batch bounded), then chained takeovers on that one cluster: first graceful ones
 * (`shutdown` to the primary; latency = winner's `promoteAt` − old primary's `shutdownCalled.at`),
 * then crashes (SIGKILL; latency = winner's `promoteAt` − parent's `wallNow()` before the kill).
 *
 * Exactly one winner per trial: the first `promote` from any secondary is the winner, and the
 * promote events of all the other 31 are counted once they all follow it; a trial with more than
 * one winner (or none within the bound) is a failure, reported as such.
 *
 * @module
 */
import { wallNow } from '../../harness/cluster.js';
import type { BenchContext, LatencyRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { rounded, summarize } from '../stats.js';
import { waitEvent } from '../lib/events.js';
import { FailoverChain, lostRacesNote, timelineNote, TRANSPORT_LABEL, type ChainTrial, type Trigger } from '../lib/failover-chain.js';

const SETTINGS = {
  transport: 'tcp' as const,
  secondaries: 32,
  /** Secondaries started at once (tsx start on 2 cores is CPU-bound). */
  spawnBatch: 8,
  heartbeatInterval: 100,
  heartbeatTimeout: 5000,
  /** Trials per kind (graceful, crash); fewer with a smaller --trials. */
  maxTrials: 10,
  trialTimeout: 4000,
  ackTimeout: 2000,
  readyTimeout: 60_000,
  followTimeout: 10_000,
  settleMs: 300,
  maxRebuilds: 2,
} as const;

type Kind = 'graceful' | 'crash';

const EXPECTED_REASON: Readonly<Record<Kind, string>> = { graceful: 'shutdown', crash: 'disconnect' };

export const scale32: Scenario = {
  name: 'scale-32',
  description: 'takeover with 1 primary + 32 secondaries (processes): graceful shutdown and SIGKILL, exactly one winner per trial',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const label = TRANSPORT_LABEL[SETTINGS.transport];
    const count = Math.min(ctx.trials, SETTINGS.maxTrials);
    const failures: TrialFailure[] = [];
    const trials: Array<ChainTrial & { kind: Kind; winners: number }> = [];
    const notes: string[] = [];
    const samples: Record<Kind, number[]> = { graceful: [], crash: [] };
    const failed: Record<Kind, number> = { graceful: 0, crash: 0 };
    const triggers: Record<Kind, Trigger> = {
      graceful: async (primary) => {
        const ack = waitEvent(primary, (e) => e.type === 'shutdownCalled', SETTINGS.ackTimeout);
        primary.send({ cmd: 'shutdown' });
        return (await ack)?.at;
      },
      crash: async (primary) => {
        const killAt = wallNow();
        primary.kill('SIGKILL');
        return killAt;
      },
    };
    const chain = new FailoverChain({ ...SETTINGS, idPrefix: 'x-' });
    try {
      const t0 = performance.now();
      const startFailure = await chain.start();
      const startupMs = performance.now() - t0;
      notes.push(`cluster start (1 + ${SETTINGS.secondaries} processes, batches of ${SETTINGS.spawnBatch}): ${(startupMs / 1000).toFixed(1)} s${startFailure === undefined ? '' : `, failed: ${startFailure}`}`);
      ctx.progress(`  cluster of ${SETTINGS.secondaries + 1} up in ${(startupMs / 1000).toFixed(1)} s${startFailure === undefined ? '' : `: ${startFailure}`}`);
      let n = 0;
      for (const kind of ['graceful', 'crash'] as const) {
        const reasons = new Map<string, number>();
        for (let i = 1; i <= count; i++) {
          n++;
          const t = await chain.trial(n, triggers[kind], SETTINGS.trialTimeout);
          const winners = t.ok ? 1 + t.otherPromotes : 0;
          trials.push({ ...t, kind, winners });
          if (t.reason !== undefined) reasons.set(t.reason, (reasons.get(t.reason) ?? 0) + 1);
          let cause = t.cause;
          if (cause === undefined && winners !== 1) cause = `${winners} winners (promote events across all secondaries), expected exactly 1`;
          if (cause === undefined && t.reason !== EXPECTED_REASON[kind]) cause = `promoted with reason '${String(t.reason)}', not '${EXPECTED_REASON[kind]}'`;
          if (cause === undefined && t.latencyMs !== undefined) samples[kind].push(t.latencyMs);
          else {
            failed[kind]++;
            failures.push({ row: `${this.name} ${kind}`, trial: i, cause: cause ?? 'no sample' });
          }
          for (const p of t.problems) notes.push(`${kind} trial ${i}: ${p}`);
          ctx.progress(`  ${kind}: ${i}/${count} trials, ${failed[kind]} failed`);
        }
        const own = trials.filter((t) => t.kind === kind);
        const oneWinner = own.filter((t) => t.winners === 1).length;
        notes.push(
          `${kind}: exactly one winner in ${oneWinner} of ${own.length} trials; promote reasons: ${[...reasons].map(([r, c]) => `${r} ${c}`).join(', ') || 'none'}`,
          `${kind}: ${timelineNote(own)}`,
          `${kind}: ${lostRacesNote(own)}`,
        );
      }
      // Late promotions after the last trial's checks: the survivors other than the primary must have none.
      const late = chain.pool.reduce((sum, p) => sum + p.events.filter((e) => e.type === 'promote').length, 0);
      notes.push(`promote events by the ${chain.pool.length} surviving secondaries at the end: ${late}${late > 0 ? ' — SAFETY: a second winner' : ''}`);
      if (chain.broken !== undefined) notes.push(chain.broken);
      if (chain.rebuilds > 0) notes.push(`cluster rebuilt ${chain.rebuilds} time(s)`);
    } finally {
      await chain.close();
    }

    const row = (kind: Kind, metric: string): LatencyRow => {
      const s = summarize(samples[kind]);
      return {
        kind: 'latency',
        scenario: this.name,
        label: `${label}, 32 secondaries, ${kind}`,
        metric,
        failures: failed[kind],
        target: undefined,
        summary: s === undefined ? undefined : rounded(s),
        samples: samples[kind],
      };
    };
    return {
      name: this.name,
      description: this.description,
      settings: { ...SETTINGS, trialsPerKind: count },
      rows: [
        row('graceful', "graceful: winner's promoteAt − old primary's shutdownCalled.at; crash: winner's promoteAt − parent's wallNow() before SIGKILL"),
        row('crash', "graceful: winner's promoteAt − old primary's shutdownCalled.at; crash: winner's promoteAt − parent's wallNow() before SIGKILL"),
      ],
      failures,
      trials,
      notes,
      durationMs: performance.now() - started,
    };
  },
};
