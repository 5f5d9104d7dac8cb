/**
 * follower-welcome: how long a secondary that did not take over goes on without knowing the new
 * primary. 1 primary + 2 secondaries per row, heartbeatInterval 5000 (the library's default);
 * each trial ends the primary (SIGKILL, or `shutdown`) and measures, for the secondary that lost
 * the race, its `primaryChanged` to the winner − the winner's `promoteAt` (both on the run's one
 * host clock). The new primary's announcement goes out before the followers have reconnected;
 * what tells them is the welcome heartbeat it sends as each one subscribes again (PROTOCOL.md
 * section 5). Without it, this lag is up to one heartbeatInterval.
 *
 * @module
 */
import type { BenchContext, LatencyRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { rounded, summarize } from '../stats.js';
import { wallNow } from '../../harness/cluster.js';
import { waitEvent } from '../lib/events.js';
import { FailoverChain, trialFailure, TRANSPORT_LABEL, type ChainTrial, type TransportKind } from '../lib/failover-chain.js';

const SETTINGS = {
  secondaries: 2,
  heartbeatInterval: 5000,
  heartbeatTimeout: 15_000,
  transports: ['tcp', 'ipc'] as TransportKind[],
  triggers: ['crash', 'graceful'] as Array<'crash' | 'graceful'>,
  /** Per trial: from the trigger to a secondary's onPromote (far below heartbeatTimeout). */
  trialTimeout: 5000,
  ackTimeout: 2000,
  readyTimeout: 20_000,
  /** Longer than heartbeatInterval, so that a follower without a welcome still gives a sample. */
  followTimeout: 8000,
  settleMs: 200,
  maxRebuilds: 3,
} as const;

const METRIC = "loser's primaryChanged.at − winner's promoteAt";

export const followerWelcome: Scenario = {
  name: 'follower-welcome',
  description: 'new primary onPromote → the other secondary knows it, heartbeatInterval 5 s',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const rows: LatencyRow[] = [];
    const failures: TrialFailure[] = [];
    const trials: Array<ChainTrial & { transport: TransportKind; trigger: string; followerLagMs: number | undefined }> = [];
    const notes: string[] = [];

    for (const trigger of SETTINGS.triggers) {
      for (const transport of SETTINGS.transports) {
        const label = `${TRANSPORT_LABEL[transport]}, ${trigger === 'crash' ? 'after a crash (SIGKILL)' : 'after a handover (shutdown)'}`;
        const chain = new FailoverChain({ ...SETTINGS, transport, oldExits: 'at-once', idPrefix: `w${transport}-${trigger[0] ?? ''}` });
        const samples: number[] = [];
        let failed = 0;
        try {
          const startFailure = await chain.start();
          if (startFailure !== undefined) ctx.progress(`  ${label}: ${startFailure}`);
          for (let i = 1; i <= ctx.trials; i++) {
            const pool = [...chain.pool];
            const t = await chain.trial(
              i,
              async (primary) => {
                if (trigger === 'crash') {
                  const at = wallNow();
                  primary.kill('SIGKILL');
                  return at;
                }
                const ack = waitEvent(primary, (e) => e.type === 'shutdownCalled', SETTINGS.ackTimeout);
                primary.send({ cmd: 'shutdown' });
                return (await ack)?.at;
              },
              SETTINGS.trialTimeout,
            );
            let cause = trialFailure(t, trigger === 'crash' ? 'disconnect' : 'shutdown');
            let lag: number | undefined;
            if (cause === undefined) {
              const loser = pool.find((n) => n.id !== t.winner);
              const followed = loser?.events.find((e) => e.type === 'primaryChanged' && e.instanceId === t.winner);
              if (followed === undefined || t.promoteAt === undefined) cause = `the other secondary did not follow ${String(t.winner)} within ${SETTINGS.followTimeout} ms`;
              else lag = followed.at - t.promoteAt;
            }
            trials.push({ ...t, transport, trigger, followerLagMs: lag });
            if (lag !== undefined) samples.push(lag);
            else {
              failed++;
              failures.push({ row: `${this.name} ${label}`, trial: i, cause: cause ?? 'no sample' });
            }
            for (const p of t.problems) notes.push(`${label} trial ${i}: ${p}`);
            if (i % 10 === 0 || i === ctx.trials) ctx.progress(`  ${label}: ${i}/${ctx.trials} trials, ${failed} failed`);
          }
          if (chain.broken !== undefined) notes.push(`${label}: ${chain.broken}`);
          if (chain.rebuilds > 0) notes.push(`${label}: cluster rebuilt ${chain.rebuilds} time(s)`);
        } finally {
          await chain.close();
        }
        const summary = summarize(samples);
        rows.push({
          kind: 'latency',
          scenario: this.name,
          label,
          metric: METRIC,
          failures: failed,
          target: { stat: 'p99', below: 50, text: 'p99 < 50 ms' },
          summary: summary === undefined ? undefined : rounded(summary),
          samples,
        });
      }
    }

    return {
      name: this.name,
      description: this.description,
      settings: { ...SETTINGS, trials: ctx.trials, measuredFrom: 'promote.promoteAt (winner, when onPromote was called)', measuredTo: 'primaryChanged.at (the secondary that did not take over)' },
      rows,
      failures,
      trials,
      notes,
      durationMs: performance.now() - started,
    };
  },
};
