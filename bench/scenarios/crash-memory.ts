/**
 * crash-memory: how crash failover depends on the size of the process that died. The kernel
 * frees a killed process's memory before it closes its files (in `do_exit`, the address space
 * goes before the file table), so its sockets close, and the secondaries learn of the crash,
 * only after a teardown that takes time in proportion to its resident memory. Each row is the
 * `crash-failover` chain (1 primary + 3 secondaries, SIGKILL, heartbeatTimeout 5000) with every
 * watcher process holding extra touched memory ("ballast"), like an application with a larger
 * heap; the RSS column is the killed primaries' median resident size.
 *
 * No target: the rows show what failover-watch can and cannot control. The difference between
 * rows is the kernel's; what is left at 0 MB is the process runtime's teardown plus
 * failover-watch's own part (see the timelines of `crash-failover`).
 *
 * @module
 */
import { wallNow } from '../../harness/cluster.js';
import type { BenchContext, LatencyRow, Scenario, ScenarioResult, TrialFailure } from '../scenario.js';
import { rounded, summarize } from '../stats.js';
import { FailoverChain, trialFailure } from '../lib/failover-chain.js';

const SETTINGS = {
  secondaries: 3,
  heartbeatInterval: 100,
  heartbeatTimeout: 5000,
  ballastsMb: [0, 100, 400],
  /** Trials per row at most (the larger processes take longer to start and to die). */
  maxTrials: 20,
  trialTimeout: 3000,
  readyTimeout: 30_000,
  followTimeout: 5000,
  settleMs: 200,
  maxRebuilds: 3,
} as const;

export const crashMemory: Scenario = {
  name: 'crash-memory',
  description: 'crash-failover with every watcher process holding 0 / 100 / 400 MB more memory (tcp, 3 secondaries)',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const started = performance.now();
    const rows: LatencyRow[] = [];
    const failures: TrialFailure[] = [];
    const notes: string[] = [];
    const trials = Math.min(ctx.trials, SETTINGS.maxTrials);
    for (const ballastMb of SETTINGS.ballastsMb) {
      const label = `+${ballastMb} MB per process`;
      const chain = new FailoverChain({ ...SETTINGS, transport: 'tcp', idPrefix: `m${ballastMb}-`, nodeOptions: { ballastMb } });
      const samples: number[] = [];
      const rss: number[] = [];
      let failed = 0;
      try {
        const startFailure = await chain.start();
        if (startFailure !== undefined) ctx.progress(`  ${label}: ${startFailure}`);
        for (let i = 1; i <= trials; i++) {
          const t = await chain.trial(
            i,
            async (primary) => {
              primary.send({ cmd: 'memory' });
              const memory = await primary.next((e) => e.type === 'memory', 2000, 'memory').catch(() => undefined);
              if (typeof memory?.rss === 'number') rss.push(memory.rss / 2 ** 20);
              const killAt = wallNow();
              primary.kill('SIGKILL');
              return killAt;
            },
            SETTINGS.trialTimeout,
          );
          const cause = trialFailure(t, 'disconnect');
          if (cause === undefined && t.latencyMs !== undefined) samples.push(t.latencyMs);
          else {
            failed++;
            failures.push({ row: `${this.name} ${label}`, trial: i, cause: cause ?? 'no sample' });
          }
          if (i % 10 === 0 || i === trials) ctx.progress(`  ${label}: ${i}/${trials} trials, ${failed} failed`);
        }
        if (chain.broken !== undefined) notes.push(`${label}: ${chain.broken}`);
      } finally {
        await chain.close();
      }
      const rssMedian = summarize(rss)?.p50;
      notes.push(`${label}: killed primaries' median RSS ${rssMedian === undefined ? 'unknown' : `${rssMedian.toFixed(0)} MiB`}`);
      const summary = summarize(samples);
      rows.push({
        kind: 'latency',
        scenario: this.name,
        label: `${label}${rssMedian === undefined ? '' : ` (RSS ${rssMedian.toFixed(0)} MiB)`}`,
        metric: "winner's promoteAt − parent's wallNow() before SIGKILL",
        failures: failed,
        target: undefined,
        summary: summary === undefined ? undefined : rounded(summary),
        samples,
      });
    }
    return {
      name: this.name,
      description: this.description,
      settings: { ...SETTINGS, trials },
      rows,
      failures,
      trials: [],
      notes,
      durationMs: performance.now() - started,
    };
  },
};
