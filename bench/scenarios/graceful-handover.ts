/**
 * graceful-handover: how long from a primary's `watcher.shutdown()` to its successor's
 * `onPromote`. One primary and two secondaries (processes) per transport; each trial sends
 * `shutdown` to the primary; latency = winner's `promoteAt` − old primary's `shutdownCalled.at`
 * (both read from the run's one host clock, `hostNow` in harness/child-runtime.ts).
 *
 * Two cases per transport. In the first, the old primary's process exits once a successor's
 * onPromote was called: the window holds the handover and nothing else. In the second it exits
 * as soon as its watcher stopped, as an application that quits right after `shutdown()` does;
 * its teardown (a few milliseconds of kernel and V8 work) then competes for the CPU with the
 * successor, which on a 2-core host shows in the tail.
 *
 * heartbeatTimeout is long (5 s) and the per-trial bound is longer still, so a promotion by
 * silence would show up as a wrong-reason failure rather than pass for a handover.
 *
 * @module
 */
import type { BenchContext, LatencyRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { rounded, summarize } from '../stats.js';
import { waitEvent } from '../lib/events.js';
import { FailoverChain, lostRacesNote, timelineNote, TRANSPORT_LABEL, type ChainTrial, type TransportKind } from '../lib/failover-chain.js';

const SETTINGS = {
  secondaries: 2,
  heartbeatInterval: 100,
  heartbeatTimeout: 5000,
  transports: ['tcp', 'ipc', 'ipc-path'] as TransportKind[],
  /** When the old primary's process exits: after the takeover, then at once (see above). */
  oldExits: ['after-takeover', 'at-once'] as Array<'after-takeover' | 'at-once'>,
  /** Per trial: from the trigger to a secondary's onPromote. */
  trialTimeout: 6000,
  /** Bound on the primary acknowledging the shutdown command. */
  ackTimeout: 2000,
  readyTimeout: 20_000,
  followTimeout: 5000,
  settleMs: 200,
  maxRebuilds: 3,
} as const;

const METRIC = "winner's promoteAt − old primary's shutdownCalled.at";

export const gracefulHandover: Scenario = {
  name: 'graceful-handover',
  description: 'primary shutdown() → successor onPromote, 1 primary + 2 secondaries, chained',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const rows: LatencyRow[] = [];
    const failures: TrialFailure[] = [];
    const trials: Array<ChainTrial & { transport: TransportKind; oldExits: 'after-takeover' | 'at-once' }> = [];
    const notes: string[] = [];

    const cases = SETTINGS.oldExits.flatMap((oldExits) => SETTINGS.transports.map((transport) => ({ oldExits, transport })));
    for (const { oldExits, transport } of cases) {
      const label = `${TRANSPORT_LABEL[transport]}, old exits ${oldExits === 'at-once' ? 'at once' : 'after takeover'}`;
      const chain = new FailoverChain({ ...SETTINGS, transport, oldExits, idPrefix: `g${transport}-${oldExits === 'at-once' ? 'x' : ''}` });
      const samples: number[] = [];
      const own: typeof trials = [];
      let failed = 0;
      try {
        const startFailure = await chain.start();
        if (startFailure !== undefined) ctx.progress(`  ${label}: ${startFailure}`);
        for (let i = 1; i <= ctx.trials; i++) {
          const t = await chain.trial(
            i,
            async (primary) => {
              const ack = waitEvent(primary, (e) => e.type === 'shutdownCalled', SETTINGS.ackTimeout);
              primary.send({ cmd: 'shutdown' });
              return (await ack)?.at;
            },
            SETTINGS.trialTimeout,
          );
          const record = { ...t, transport, oldExits };
          trials.push(record);
          own.push(record);
          let cause = t.cause;
          if (t.ok && t.reason !== 'shutdown') cause = `promoted with reason '${t.reason}', not 'shutdown'`;
          if (cause === undefined && t.latencyMs !== undefined) samples.push(t.latencyMs);
          else {
            failed++;
            failures.push({ row: `${this.name} ${label}`, trial: i, cause: cause ?? 'no sample' });
          }
          for (const p of t.problems) notes.push(`${label} trial ${i}: ${p}`);
          if (i % 10 === 0 || i === ctx.trials) ctx.progress(`  ${label}: ${i}/${ctx.trials} trials, ${failed} failed`);
        }
        if (chain.broken !== undefined) notes.push(`${label}: ${chain.broken}`);
        if (chain.rebuilds > 0) notes.push(`${label}: cluster rebuilt ${chain.rebuilds} time(s)`);
        notes.push(`${label}: ${timelineNote(own)}`, `${label}: ${lostRacesNote(own)}`);
      } finally {
        await chain.close();
      }
      const fresh = own.filter((t) => t.winnerWasFresh === true).length;
      const ok = own.filter((t) => t.ok).length;
      notes.push(`${label}: the freshly spawned secondary won ${fresh} of ${ok} handovers`);
      const summary = summarize(samples);
      rows.push({
        kind: 'latency',
        scenario: this.name,
        label,
        metric: METRIC,
        failures: failed,
        // The target is the handover's; the other case shows what the old process's exit adds.
        target: oldExits === 'after-takeover' ? { stat: 'p99', below: 5, text: 'p99 < 5 ms' } : undefined,
        summary: summary === undefined ? undefined : rounded(summary),
        samples,
      });
    }

    return {
      name: this.name,
      description: this.description,
      settings: { ...SETTINGS, trials: ctx.trials, measuredFrom: 'shutdownCalled.at (child, before watcher.shutdown())', measuredTo: 'promote.promoteAt (child, when onPromote was called)' },
      rows,
      failures,
      trials,
      notes,
      durationMs: performance.now() - started,
    };
  },
};
